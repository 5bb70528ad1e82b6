#pragma once
// Pure request routing: method + target -> what to do. No sockets, no I/O;
// every 400/404/405 the API gives is decided here and unit-tested.
#include <string>
#include <string_view>
#include <vector>

#include "sidecache/config/config.hpp"
#include "sidecache/http/answer.hpp"

namespace sidecache::http {

// A validated entity request: which entity, its normalised params, its key.
struct EntityRequest {
  const config::Entity* entity = nullptr;
  std::vector<std::string> values;  // entity->params order
  std::string key;
};

struct Route {
  enum class Kind {
    entity_get,   // read one entity instance (request is set)
    entity_list,  // GET /v1/entities
    healthz,
    readyz,
    answer,       // answer is final (an error, or a static answer)
  };
  Kind kind = Kind::answer;
  EntityRequest request;
  Answer answer;
};

// Decides the route for one request.
Route route(const config::Config& cfg, std::string_view method, std::string_view target);

// The body of GET /v1/entities.
std::string entity_list_json(const config::Config& cfg);

}  // namespace sidecache::http

#pragma once
// Pure request routing: method + target -> what to do. No sockets, no I/O;
// every 400/404/405 the API gives is decided here and unit-tested.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sidecache/cache/request.hpp"
#include "sidecache/config/config.hpp"
#include "sidecache/http/answer.hpp"

namespace sidecache::http {

using cache::EntityRequest;
using cache::Invalidation;

struct Route {
  enum class Kind {
    entity_get,   // read one entity instance (request is set)
    invalidate,   // invalidation is set
    entity_list,  // GET /v1/entities
    healthz,
    readyz,
    metrics,      // GET /metrics
    batch,        // POST /v1/batch (batch is set)
    answer,       // answer is final (an error, or a static answer)
  };
  Kind kind = Kind::answer;
  EntityRequest request;
  Invalidation invalidation;
  Answer answer;
  // One per requested item, in order: a request to read, or its own 400.
  struct BatchItem {
    std::optional<EntityRequest> request;
    Answer error;  // when !request
  };
  std::vector<BatchItem> batch;
};

// Every endpoint the server has: the router accepts exactly these
// (method, path) pairs, and docs/openapi.yaml must describe each (a test
// checks both). {entity} stands for any configured entity name.
struct Endpoint {
  std::string_view method;
  std::string_view path;
};
const std::vector<Endpoint>& endpoints();

// Decides the route for one request.
Route route(const config::Config& cfg, std::string_view method, std::string_view target, std::string_view body = {});

// Parses the body of POST /v1/invalidate; on error, route.answer is a 400.
Route parse_invalidation(const config::Config& cfg, std::string_view body);

// Parses the body of POST /v1/batch, {"requests":[{"entity":..,"params":{..}},..]}:
// a body that is not such JSON (an unknown or duplicate field included) is
// a 400, more than http.max_batch items a 413; an item that does not
// validate gets its own 400 and the others are read.
Route parse_batch(const config::Config& cfg, std::string_view body);

// The origin form of a request target (RFC 9112 3.2): an absolute-form
// target ("http://host/healthz?x") becomes its path and query; other
// targets are returned as they are. The server routes and checks auth on
// this form only.
std::string_view origin_form(std::string_view target);

// Whether a request may proceed: with auth.token set, every /v1 path needs
// "Authorization: Bearer <token>" (compared in constant time); /healthz and
// /readyz stay open. Returns the 401 answer when it may not.
std::optional<Answer> check_auth(const config::Config& cfg, std::string_view target, std::string_view authorization);

// The body of GET /v1/entities.
std::string entity_list_json(const config::Config& cfg);

}  // namespace sidecache::http

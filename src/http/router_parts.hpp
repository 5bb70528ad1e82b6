#pragma once
// Pieces of request parsing shared by the router's files (router.cpp,
// batch_request.cpp). Private to the http module.
#include <boost/json/value.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "sidecache/cache/params.hpp"
#include "sidecache/http/router.hpp"

namespace sidecache::http::detail {

// `body` as a JSON object with no key given twice; nullopt and a 400 in
// `error` (what a good body looks like: `shape`) otherwise.
std::optional<boost::json::object> object_body(std::string_view body, std::string_view shape, Answer& error);
// The first key given twice in one object of `body` (valid JSON), or "".
std::string duplicate_key(std::string_view body);
// The 400 for a parameter that does not validate, naming it.
Answer param_error(const cache::ParamError& e);
Answer bad_request(std::string_view code, std::string_view message,
                   const std::vector<std::pair<std::string, std::string>>& extra = {});
// A JSON string or integer as the text a query string would carry.
std::optional<std::string> scalar_text(const boost::json::value& x);
// An entity request from already-decoded pairs (GET, DELETE, POST and batch share it).
std::variant<EntityRequest, Answer> entity_request(const config::Config& cfg, const config::Entity& e,
                                                   const cache::QueryPairs& pairs);

}  // namespace sidecache::http::detail

// POST /v1/batch: the body, parsed into one entity request (or one 400) per
// item. Pure, like the rest of the router; tests/fuzz/batch_body.cpp fuzzes it.
#include <boost/json.hpp>

#include "router_parts.hpp"
#include "sidecache/http/router.hpp"

namespace sidecache::http {
namespace json = boost::json;

namespace {

// One item: {"entity": name, "params": {name: string or integer}}.
Route::BatchItem item_of(const config::Config& cfg, const json::object& o) {
  Route::BatchItem item;
  auto entity_it = o.find("entity");
  if (entity_it == o.end() || !entity_it->value().is_string()) {
    item.error = detail::bad_request(entity_it == o.end() ? "missing_field" : "bad_field",
                                     "each request needs 'entity', the entity's name as a string", {{"field", "entity"}});
    return item;
  }
  std::string name(entity_it->value().as_string());
  const config::Entity* e = cfg.find_entity(name);
  if (!e) {
    item.error = detail::bad_request("unknown_entity", "no entity named '" + name + "' is configured; GET /v1/entities lists them",
                                     {{"entity", name}});
    return item;
  }
  cache::QueryPairs pairs;
  if (auto params_it = o.find("params"); params_it != o.end()) {
    if (!params_it->value().is_object()) {
      item.error = detail::bad_request("bad_field", "'params' must be an object of name: value", {{"field", "params"}});
      return item;
    }
    for (const auto& [k, val] : params_it->value().as_object()) {
      auto s = detail::scalar_text(val);
      if (!s) {
        item.error = detail::bad_request("bad_param", "parameter '" + std::string(k) + "' must be a string or an integer",
                                         {{"param", std::string(k)}});
        return item;
      }
      pairs.emplace_back(std::string(k), std::move(*s));
    }
  }
  auto req = detail::entity_request(cfg, *e, pairs);
  if (auto* a = std::get_if<Answer>(&req)) item.error = std::move(*a);
  else item.request = std::move(std::get<EntityRequest>(req));
  return item;
}

}  // namespace

Route parse_batch(const config::Config& cfg, std::string_view body) {
  Route r;
  r.kind = Route::Kind::answer;
  auto parsed = detail::object_body(body, R"({"requests":[...]})", r.answer);
  if (!parsed) return r;
  const json::object& o = *parsed;
  for (const auto& [k, _] : o) {
    if (k != "requests") {
      r.answer = detail::bad_request("unknown_field", "unknown field '" + std::string(k) + "' (fields: requests)",
                                     {{"field", std::string(k)}});
      return r;
    }
  }
  auto it = o.find("requests");
  if (it == o.end() || !it->value().is_array()) {
    r.answer = detail::bad_request(it == o.end() ? "missing_field" : "bad_field",
                                   R"('requests' must be an array of {"entity":...,"params":{...}})", {{"field", "requests"}});
    return r;
  }
  const json::array& items = it->value().as_array();
  if (items.size() > cfg.http.max_batch) {
    r.answer = error_answer(413, "too_many_requests_in_batch",
                            std::to_string(items.size()) + " requests in one batch; at most http.max_batch (" +
                                std::to_string(cfg.http.max_batch) + ")",
                            {{"max_batch", std::to_string(cfg.http.max_batch)}});
    return r;
  }
  // Structure first: an item that is not an object, or has a field other
  // than entity and params, makes the whole body a 400 (as an unknown
  // field does); what the items ask for is judged per item.
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (!items[i].is_object()) {
      r.answer = detail::bad_request("bad_field", "requests[" + std::to_string(i) + "] must be an object",
                                     {{"field", "requests"}});
      return r;
    }
    for (const auto& [k, _] : items[i].as_object()) {
      if (k != "entity" && k != "params") {
        r.answer = detail::bad_request("unknown_field",
                                       "unknown field '" + std::string(k) + "' in requests[" + std::to_string(i) +
                                           "] (fields: entity, params)",
                                       {{"field", std::string(k)}});
        return r;
      }
    }
  }
  r.kind = Route::Kind::batch;
  r.batch.reserve(items.size());
  for (const auto& item : items) r.batch.push_back(item_of(cfg, item.as_object()));
  return r;
}

}  // namespace sidecache::http

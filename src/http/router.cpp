#include "sidecache/http/router.hpp"

#include <boost/json.hpp>

#include "sidecache/cache/key.hpp"
#include "sidecache/cache/params.hpp"
#include "sidecache/config/duration.hpp"

namespace sidecache::http {
namespace json = boost::json;

Answer error_answer(unsigned status, std::string_view code, std::string_view message,
                    const std::vector<std::pair<std::string, std::string>>& extra) {
  json::object o;
  o["error"] = code;
  for (const auto& [k, v] : extra) o[k] = v;
  o["message"] = message;
  Answer a;
  a.status = status;
  a.body = json::serialize(o);
  return a;
}

namespace {

Answer method_not_allowed(std::string_view method, const char* allow) {
  Answer a = error_answer(405, "method_not_allowed", std::string(method) + " is not allowed here; use " + allow);
  a.headers.emplace_back("Allow", allow);
  return a;
}

Answer param_error(const cache::ParamError& e) {
  return error_answer(400, e.code, e.message, {{"param", e.param}});
}

}  // namespace

Route route(const config::Config& cfg, std::string_view method, std::string_view target) {
  Route r;
  auto q = target.find('?');
  std::string_view path = target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  bool get = method == "GET";

  static constexpr std::string_view kEntities = "/v1/entities";
  if (path == "/healthz" || path == "/readyz") {
    if (!get) { r.answer = method_not_allowed(method, "GET"); return r; }
    r.kind = path == "/healthz" ? Route::Kind::healthz : Route::Kind::readyz;
    return r;
  }
  if (path == kEntities || path == "/v1/entities/") {
    if (!get) { r.answer = method_not_allowed(method, "GET"); return r; }
    r.kind = Route::Kind::entity_list;
    return r;
  }
  if (path.size() > kEntities.size() + 1 && path.substr(0, kEntities.size() + 1) == "/v1/entities/") {
    std::string_view name = path.substr(kEntities.size() + 1);
    const config::Entity* e = name.find('/') == std::string_view::npos ? cfg.find_entity(name) : nullptr;
    if (!e) {
      r.answer = error_answer(404, "unknown_entity", "no entity named '" + std::string(name) + "' is configured; GET /v1/entities lists them",
                              {{"entity", std::string(name)}});
      return r;
    }
    if (!get) { r.answer = method_not_allowed(method, "GET"); return r; }
    auto pairs = cache::parse_query(query);
    if (auto* err = std::get_if<cache::ParamError>(&pairs)) { r.answer = param_error(*err); return r; }
    auto values = cache::bind_params(*e, std::get<cache::QueryPairs>(pairs));
    if (auto* err = std::get_if<cache::ParamError>(&values)) { r.answer = param_error(*err); return r; }
    r.kind = Route::Kind::entity_get;
    r.request.entity = e;
    r.request.values = std::move(std::get<std::vector<std::string>>(values));
    r.request.key = cache::build_key(cfg.key_prefix, *e, r.request.values);
    return r;
  }
  r.answer = error_answer(404, "no_route", "no such endpoint: " + std::string(path) +
                                              " (endpoints: /v1/entities, /v1/entities/{entity}, /healthz, /readyz)");
  return r;
}

std::string entity_list_json(const config::Config& cfg) {
  json::array list;
  for (const auto& e : cfg.entities) {
    json::object o;
    o["name"] = e.name;
    o["scope"] = e.scope == config::Scope::tenant ? "tenant" : "global";
    json::array params;
    for (const auto& p : e.params) {
      json::object po;
      po["name"] = p.name;
      po["type"] = config::to_string(p.type);
      if (p.type == config::ParamType::string) po["max_len"] = p.max_len;
      if (p.is_tenant) po["tenant"] = true;
      params.push_back(std::move(po));
    }
    o["params"] = std::move(params);
    o["result"] = e.result == config::ResultShape::row ? "row" : "rows";
    o["ttl"] = config::format_duration(e.ttl);
    o["ttl_seconds"] = static_cast<double>(e.ttl.count()) / 1e6;
    if (e.result == config::ResultShape::row) o["negative_ttl"] = config::format_duration(e.negative_ttl);
    list.push_back(std::move(o));
  }
  json::object root;
  root["entities"] = std::move(list);
  return json::serialize(root);
}

}  // namespace sidecache::http

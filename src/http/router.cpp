#include "sidecache/http/router.hpp"

#include "router_parts.hpp"

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <set>

#include "sidecache/cache/key_layout.hpp"
#include "sidecache/cache/error_body.hpp"
#include "sidecache/cache/key.hpp"
#include "sidecache/cache/params.hpp"
#include "sidecache/config/duration.hpp"
#include "sidecache/config/tag_template.hpp"

namespace sidecache::http {
namespace json = boost::json;


Answer error_answer(unsigned status, std::string_view code, std::string_view message,
                    const std::vector<std::pair<std::string, std::string>>& extra) {
  Answer a;
  a.status = status;
  a.body = cache::error_body(code, message, extra);
  return a;
}

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// Finds a key given twice in one JSON object: json::parse keeps the last,
// and {"tenant":"A","tenant":"B"} must not quietly mean B. (A pass of
// Boost.JSON's SAX parser over the body; only invalidation bodies, never the
// hit path.)
struct DuplicateKeys {
  constexpr static std::size_t max_object_size = std::size_t(-1);
  constexpr static std::size_t max_array_size = std::size_t(-1);
  constexpr static std::size_t max_key_size = std::size_t(-1);
  constexpr static std::size_t max_string_size = std::size_t(-1);
  std::vector<std::set<std::string>> open;
  std::string key, duplicate;
  bool on_document_begin(boost::system::error_code&) { return true; }
  bool on_document_end(boost::system::error_code&) { return true; }
  bool on_object_begin(boost::system::error_code&) { open.emplace_back(); return true; }
  bool on_object_end(std::size_t, boost::system::error_code&) { open.pop_back(); return true; }
  bool on_array_begin(boost::system::error_code&) { return true; }
  bool on_array_end(std::size_t, boost::system::error_code&) { return true; }
  bool on_key_part(std::string_view s, std::size_t, boost::system::error_code&) { key.append(s); return true; }
  bool on_key(std::string_view s, std::size_t, boost::system::error_code&) {
    key.append(s);
    if (!open.back().insert(key).second && duplicate.empty()) duplicate = key;
    key.clear();
    return true;
  }
  bool on_string_part(std::string_view, std::size_t, boost::system::error_code&) { return true; }
  bool on_string(std::string_view, std::size_t, boost::system::error_code&) { return true; }
  bool on_number_part(std::string_view, boost::system::error_code&) { return true; }
  bool on_int64(std::int64_t, std::string_view, boost::system::error_code&) { return true; }
  bool on_uint64(std::uint64_t, std::string_view, boost::system::error_code&) { return true; }
  bool on_double(double, std::string_view, boost::system::error_code&) { return true; }
  bool on_bool(bool, boost::system::error_code&) { return true; }
  bool on_null(boost::system::error_code&) { return true; }
  bool on_comment_part(std::string_view, boost::system::error_code&) { return true; }
  bool on_comment(std::string_view, boost::system::error_code&) { return true; }
};

}  // namespace

// The first key given twice in one object of `body` (valid JSON), or "".
std::string detail::duplicate_key(std::string_view body) {
  json::basic_parser<DuplicateKeys> p{json::parse_options{}};
  boost::system::error_code ec;
  p.write_some(false, body.data(), body.size(), ec);
  return ec ? std::string() : p.handler().duplicate;
}

namespace {

Answer method_not_allowed(std::string_view method, const std::string& allow) {
  Answer a = error_answer(405, "method_not_allowed", std::string(method) + " is not allowed here; use " + allow);
  a.headers.emplace_back("Allow", allow);
  return a;
}

}  // namespace

Answer detail::param_error(const cache::ParamError& e) {
  return error_answer(400, e.code, e.message, {{"param", e.param}});
}

Answer detail::bad_request(std::string_view code, std::string_view message,
                           const std::vector<std::pair<std::string, std::string>>& extra) {
  return error_answer(400, code, message, extra);
}

std::optional<json::object> detail::object_body(std::string_view body, std::string_view shape, Answer& error) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) {
    error = bad_request("bad_json", ec ? "the body is not valid JSON: " + ec.message() : "the body must be " + std::string(shape));
    return std::nullopt;
  }
  if (std::string dup = duplicate_key(body); !dup.empty()) {
    error = bad_request("duplicate_field", "field '" + dup + "' is given twice; give it once", {{"field", dup}});
    return std::nullopt;
  }
  return std::move(v.as_object());
}

std::optional<std::string> detail::scalar_text(const json::value& x) {
  if (x.is_string()) return std::string(x.as_string());
  if (x.is_int64()) return std::to_string(x.as_int64());
  if (x.is_uint64()) return std::to_string(x.as_uint64());
  return std::nullopt;
}

std::variant<EntityRequest, Answer> detail::entity_request(const config::Config& cfg, const config::Entity& e,
                                                           const cache::QueryPairs& pairs) {
  auto values = cache::bind_params(e, pairs);
  if (auto* err = std::get_if<cache::ParamError>(&values)) return param_error(*err);
  EntityRequest r;
  r.entity = &e;
  r.values = std::move(std::get<std::vector<std::string>>(values));
  r.key = cache::KeyLayout(cfg).value(e, r.values);
  return r;
}

using detail::bad_request;
using detail::duplicate_key;
using detail::entity_request;
using detail::param_error;

namespace {

// The tenant of an invalidation body, normalised as a GET's: a string or an
// integer (else bad_field), valid for the tenant type (else bad_param).
std::optional<std::string> tenant_of(const config::Config& cfg, const json::value& v, Answer& error) {
  auto s = detail::scalar_text(v);
  if (!s) {
    error = bad_request("bad_field", "'tenant' must be a string or an integer", {{"field", "tenant"}});
    return std::nullopt;
  }
  config::ParamSpec spec{cfg.tenant.param, cfg.tenant.type, 256, true};
  std::string why;
  auto t = cache::normalize(spec, *s, why);
  if (!t) error = bad_request("bad_param", "tenant " + why, {{"param", cfg.tenant.param}});
  return t;
}

// {"tenant": …, "tag": …}, or {"tag": …} for global entities' tags.
Route parse_tag_invalidation(const config::Config& cfg, const json::object& o, Route& r) {
  if (o.contains("entity") || o.contains("params")) {
    std::string field = o.contains("entity") ? "entity" : "params";
    r.answer = bad_request("bad_field", "a tag spans entities: give 'tag' with 'tenant' (or alone, for global entities), "
                           "without '" + field + "'", {{"field", field}});
    return r;
  }
  const json::value& tv = o.at("tag");
  std::string tag = tv.is_string() ? std::string(tv.as_string()) : std::string();
  if (!tv.is_string() || !config::valid_tag(tag)) {
    r.answer = bad_request("bad_field", "'tag' must be a string of 1 to " + std::to_string(config::kMaxTagBytes) +
                           " printable bytes, like \"project:42\"", {{"field", "tag"}});
    return r;
  }
  std::string tenant;
  if (auto it = o.find("tenant"); it != o.end()) {
    auto t = tenant_of(cfg, it->value(), r.answer);
    if (!t) return r;
    tenant = std::move(*t);
  } else {
    bool global_tags = std::any_of(cfg.entities.begin(), cfg.entities.end(), [](const config::Entity& e) {
      return e.scope == config::Scope::global && !e.tags.empty();
    });
    if (!global_tags) {
      r.answer = bad_request("missing_field", "tags are per tenant: give 'tenant' with 'tag' (no global entity declares tags)",
                             {{"field", "tenant"}});
      return r;
    }
  }
  r.kind = Route::Kind::invalidate;
  r.invalidation.scope = Invalidation::Scope::tag;
  r.invalidation.tenant = std::move(tenant);
  r.invalidation.tag = std::move(tag);
  return r;
}

}  // namespace

Route parse_invalidation(const config::Config& cfg, std::string_view body) {
  Route r;
  r.kind = Route::Kind::answer;
  auto parsed = detail::object_body(body, "a JSON object", r.answer);
  if (!parsed) return r;
  const json::object& o = *parsed;
  for (const auto& [k, _] : o) {
    if (k != "entity" && k != "params" && k != "tenant" && k != "tag") {
      r.answer = bad_request("unknown_field", "unknown field '" + std::string(k) + "' (fields: entity, params, tenant, tag)",
                             {{"field", std::string(k)}});
      return r;
    }
  }
  // Scalars may be strings or numbers (an int tenant or param).
  auto scalar = detail::scalar_text;
  const config::Entity* entity = nullptr;
  if (auto it = o.find("entity"); it != o.end()) {
    if (!it->value().is_string()) {
      r.answer = bad_request("bad_field", "'entity' must be a string", {{"field", "entity"}});
      return r;
    }
    std::string name(it->value().as_string());
    entity = cfg.find_entity(name);
    if (!entity) {
      r.answer = bad_request("unknown_entity", "no entity named '" + name + "' is configured", {{"entity", name}});
      return r;
    }
  }
  auto params_it = o.find("params");
  auto tenant_it = o.find("tenant");
  if (o.contains("tag")) return parse_tag_invalidation(cfg, o, r);
  if (params_it != o.end()) {
    if (!entity) { r.answer = bad_request("missing_field", "'params' needs 'entity'", {{"field", "entity"}}); return r; }
    if (tenant_it != o.end()) {
      r.answer = bad_request("bad_field", "give either 'params' (one key) or 'tenant', not both", {{"field", "tenant"}});
      return r;
    }
    if (!params_it->value().is_object()) {
      r.answer = bad_request("bad_field", "'params' must be an object of name: value", {{"field", "params"}});
      return r;
    }
    cache::QueryPairs pairs;
    for (const auto& [k, val] : params_it->value().as_object()) {
      auto s = scalar(val);
      if (!s) {
        r.answer = bad_request("bad_param", "parameter '" + std::string(k) + "' must be a string or an integer",
                               {{"param", std::string(k)}});
        return r;
      }
      pairs.emplace_back(std::string(k), std::move(*s));
    }
    auto req = entity_request(cfg, *entity, pairs);
    if (auto* a = std::get_if<Answer>(&req)) { r.answer = std::move(*a); return r; }
    r.kind = Route::Kind::invalidate;
    r.invalidation.scope = Invalidation::Scope::key;
    r.invalidation.entity = entity;
    r.invalidation.request = std::move(std::get<EntityRequest>(req));
    if (entity->scope == config::Scope::tenant) r.invalidation.tenant = r.invalidation.request.values.at(0);
    return r;
  }
  if (tenant_it != o.end()) {
    if (entity && entity->scope == config::Scope::global) {
      r.answer = bad_request("bad_field", "entity '" + entity->name + "' is global: it has no tenant; drop 'tenant'",
                             {{"field", "tenant"}});
      return r;
    }
    auto t = tenant_of(cfg, tenant_it->value(), r.answer);
    if (!t) return r;
    r.kind = Route::Kind::invalidate;
    r.invalidation.scope = entity ? Invalidation::Scope::entity : Invalidation::Scope::tenant;
    r.invalidation.entity = entity;
    r.invalidation.tenant = std::move(*t);
    return r;
  }
  if (!entity) {
    r.answer = bad_request("missing_field", "give 'entity', 'tenant', or both (see docs/invalidation.md)", {{"field", "entity"}});
    return r;
  }
  r.kind = Route::Kind::invalidate;
  r.invalidation.scope = entity->scope == config::Scope::global ? Invalidation::Scope::entity
                                                                : Invalidation::Scope::entity_all_tenants;
  r.invalidation.entity = entity;
  return r;
}

const std::vector<Endpoint>& endpoints() {
  static const std::vector<Endpoint> all = {
      {"GET", "/v1/entities"},     {"GET", "/v1/entities/{entity}"}, {"DELETE", "/v1/entities/{entity}"},
      {"POST", "/v1/invalidate"},  {"POST", "/v1/batch"},             {"GET", "/healthz"},
      {"GET", "/readyz"},          {"GET", "/metrics"},
  };
  return all;
}

Route route(const config::Config& cfg, std::string_view method, std::string_view target, std::string_view body) {
  Route r;
  auto q = target.find('?');
  std::string_view path = target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);

  // The endpoint table decides which paths exist and which methods they take.
  static constexpr std::string_view kEntities = "/v1/entities";
  std::string_view tmpl = path;
  if (path == "/v1/entities/") tmpl = kEntities;
  else if (path.size() > kEntities.size() + 1 && path.substr(0, kEntities.size() + 1) == "/v1/entities/")
    tmpl = "/v1/entities/{entity}";
  bool known = false, allowed = false;
  for (const auto& ep : endpoints()) {
    if (ep.path != tmpl) continue;
    known = true;
    allowed = allowed || ep.method == method;
  }
  // The error texts are built only for the requests that get them.
  if (!known) {
    std::string paths;
    for (const auto& ep : endpoints())
      if (paths.find(ep.path) == std::string::npos) paths += (paths.empty() ? "" : ", ") + std::string(ep.path);
    r.answer = error_answer(404, "no_route", "no such endpoint: " + std::string(path) + " (endpoints: " + paths + ")");
    return r;
  }
  if (!allowed) {
    std::string allow;
    for (const auto& ep : endpoints())
      if (ep.path == tmpl) allow += (allow.empty() ? "" : ", ") + std::string(ep.method);
    r.answer = method_not_allowed(method, allow);
    return r;
  }

  if (path == "/v1/invalidate") return parse_invalidation(cfg, body);
  if (path == "/v1/batch") return parse_batch(cfg, body);
  if (path == "/metrics") {
    r.kind = Route::Kind::metrics;
    return r;
  }
  if (path == "/healthz" || path == "/readyz") {
    r.kind = path == "/healthz" ? Route::Kind::healthz : Route::Kind::readyz;
    return r;
  }
  if (tmpl == kEntities) {
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
    bool del = method == "DELETE";
    auto pairs = cache::parse_query(query);
    if (auto* err = std::get_if<cache::ParamError>(&pairs)) { r.answer = param_error(*err); return r; }
    auto req = entity_request(cfg, *e, std::get<cache::QueryPairs>(pairs));
    if (auto* a = std::get_if<Answer>(&req)) { r.answer = std::move(*a); return r; }
    if (del) {
      r.kind = Route::Kind::invalidate;
      r.invalidation.scope = Invalidation::Scope::key;
      r.invalidation.entity = e;
      r.invalidation.request = std::move(std::get<EntityRequest>(req));
      if (e->scope == config::Scope::tenant) r.invalidation.tenant = r.invalidation.request.values.at(0);
      return r;
    }
    r.kind = Route::Kind::entity_get;
    r.request = std::move(std::get<EntityRequest>(req));
    return r;
  }
  return r;  // not reached: every endpoint in the table is handled above
}

std::string_view origin_form(std::string_view target) {
  for (std::string_view scheme : {std::string_view("http://"), std::string_view("https://")}) {
    if (target.size() < scheme.size() || !iequals(target.substr(0, scheme.size()), scheme)) continue;
    std::string_view rest = target.substr(scheme.size());
    std::size_t path = rest.find_first_of("/?");
    // An empty path is "/" (RFC 9112 3.2.2); no endpoint lives there.
    if (path == std::string_view::npos || rest[path] == '?') return "/";
    return rest.substr(path);
  }
  return target;
}

std::optional<Answer> check_auth(const config::Config& cfg, std::string_view target, std::string_view authorization) {
  bool guarded = target.substr(0, 4) == "/v1/" ||
                 (cfg.auth.metrics_need_token && target.substr(0, 8) == "/metrics" &&
                  (target.size() == 8 || target[8] == '?'));
  if (cfg.auth.token.empty() || !guarded) return std::nullopt;
  // RFC 9110 11.1: the scheme is case-insensitive, then one or more spaces.
  std::string_view given;
  if (authorization.size() > 6 && iequals(authorization.substr(0, 6), "bearer") && authorization[6] == ' ') {
    given = authorization.substr(7);
    while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
  }
  // Constant time: every byte of the expected token is compared, whatever
  // the given one's length or first difference.
  const std::string& want = cfg.auth.token;
  unsigned char diff = given.size() == want.size() ? 0 : 1;
  for (std::size_t i = 0; i < want.size(); ++i)
    diff |= static_cast<unsigned char>(want[i] ^ (i < given.size() ? given[i] : 0));
  if (diff == 0) return std::nullopt;
  Answer a = error_answer(401, "unauthorized", authorization.empty() ? "this endpoint needs Authorization: Bearer <token>"
                                                                     : "the bearer token is not valid");
  a.headers.emplace_back("WWW-Authenticate", "Bearer");
  return a;
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
    // Integers: JSON decoders that want an int (Go's int, serde's u64)
    // refuse 9E2. A TTL under a second is 0 here; ttl_ms is exact.
    o["ttl_seconds"] = static_cast<std::uint64_t>(e.ttl.count() / 1000000);
    o["ttl_ms"] = static_cast<std::uint64_t>(e.ttl.count() / 1000);
    if (e.result == config::ResultShape::row) o["negative_ttl"] = config::format_duration(e.negative_ttl);
    list.push_back(std::move(o));
  }
  json::object root;
  root["entities"] = std::move(list);
  return json::serialize(root);
}

}  // namespace sidecache::http

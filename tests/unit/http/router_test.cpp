#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include "../entity_fixture.hpp"
#include "sidecache/http/router.hpp"

using namespace sidecache;
using config::ParamType;
using config::Scope;
using Kind = http::Route::Kind;
namespace json = boost::json;

namespace {

config::Config make_config() {
  config::Config c;
  c.key_prefix = "sc:";
  c.entities.push_back(test::make_entity("user", Scope::tenant, {{"user_id", ParamType::uuid}}));
  c.entities.push_back(test::make_entity("feature_flags", Scope::global, {}));
  c.entities.back().result = config::ResultShape::rows;
  return c;
}

const std::string kOrg = "11111111-1111-1111-1111-111111111111";
const std::string kUid = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa";

json::object body(const http::Route& r) { return json::parse(r.answer.body).as_object(); }

}  // namespace

TEST_CASE("a valid entity request routes to a key") {
  auto cfg = make_config();
  auto r = http::route(cfg, "GET", "/v1/entities/user?org_id=" + kOrg + "&user_id=" + kUid);
  REQUIRE(r.kind == Kind::entity_get);
  CHECK(r.request.entity->name == "user");
  CHECK(r.request.key == "sc:t:" + kOrg + ":user:0123abcd:" + kUid);
  auto g = http::route(cfg, "GET", "/v1/entities/feature_flags");
  REQUIRE(g.kind == Kind::entity_get);
  CHECK(g.request.key == "sc:g:feature_flags:0123abcd");
}

TEST_CASE("upper-case uuids map to the same key as lower-case ones") {
  auto cfg = make_config();
  std::string upper = "AAAAAAAA-AAAA-AAAA-AAAA-AAAAAAAAAAAA";
  auto a = http::route(cfg, "GET", "/v1/entities/user?org_id=" + kOrg + "&user_id=" + upper);
  auto b = http::route(cfg, "GET", "/v1/entities/user?org_id=" + kOrg + "&user_id=" + kUid);
  CHECK(a.request.key == b.request.key);
}

TEST_CASE("400s name the parameter") {
  auto cfg = make_config();
  struct Case { std::string target, error, param; };
  std::vector<Case> cases = {
      {"/v1/entities/user?user_id=" + kUid, "missing_param", "org_id"},
      {"/v1/entities/user?org_id=" + kOrg, "missing_param", "user_id"},
      {"/v1/entities/user?org_id=" + kOrg + "&user_id=" + kUid + "&x=1", "unknown_param", "x"},
      {"/v1/entities/user?org_id=acme&user_id=" + kUid, "bad_param", "org_id"},
      {"/v1/entities/user?org_id=" + kOrg + "&user_id=42", "bad_param", "user_id"},
      {"/v1/entities/user?org_id=" + kOrg + "&user_id=%zz", "bad_param", "user_id"},
      {"/v1/entities/feature_flags?org_id=" + kOrg, "unknown_param", "org_id"},
  };
  for (const auto& c : cases) {
    INFO(c.target);
    auto r = http::route(cfg, "GET", c.target);
    REQUIRE(r.kind == Kind::answer);
    CHECK(r.answer.status == 400);
    auto b = body(r);
    CHECK(b.at("error").as_string() == c.error);
    CHECK(b.at("param").as_string() == c.param);
    CHECK_FALSE(b.at("message").as_string().empty());
  }
}

TEST_CASE("unknown entities and paths are 404, other methods 405") {
  auto cfg = make_config();
  auto u = http::route(cfg, "GET", "/v1/entities/nope?org_id=" + kOrg);
  CHECK(u.answer.status == 404);
  CHECK(body(u).at("error").as_string() == "unknown_entity");
  auto p = http::route(cfg, "GET", "/v2/whatever");
  CHECK(p.answer.status == 404);
  auto m = http::route(cfg, "POST", "/v1/entities/user?org_id=" + kOrg + "&user_id=" + kUid);
  CHECK(m.answer.status == 405);
  REQUIRE(m.answer.header("Allow"));
  CHECK(*m.answer.header("Allow") == "GET, DELETE");
  REQUIRE(http::route(cfg, "GET", "/v1/invalidate").answer.header("Allow"));
  CHECK(*http::route(cfg, "GET", "/v1/invalidate").answer.header("Allow") == "POST");
  CHECK(body(m).at("error").as_string() == "method_not_allowed");
  CHECK(http::route(cfg, "PUT", "/healthz").answer.status == 405);
}

TEST_CASE("service endpoints route") {
  auto cfg = make_config();
  CHECK(http::route(cfg, "GET", "/healthz").kind == Kind::healthz);
  CHECK(http::route(cfg, "GET", "/readyz").kind == Kind::readyz);
  CHECK(http::route(cfg, "GET", "/v1/entities").kind == Kind::entity_list);
}

TEST_CASE("the entity list describes names, scopes, params, results and ttls") {
  auto cfg = make_config();
  auto list = json::parse(http::entity_list_json(cfg)).as_object().at("entities").as_array();
  REQUIRE(list.size() == 2);
  auto user = list[0].as_object();
  CHECK(user.at("name").as_string() == "user");
  CHECK(user.at("scope").as_string() == "tenant");
  CHECK(user.at("result").as_string() == "row");
  CHECK(user.at("ttl").as_string() == "5m");
  // Durations are JSON integers (a double like 3E2 breaks Go and serde decoders).
  std::string text = http::entity_list_json(cfg);
  CHECK(text.find("\"ttl_seconds\":300,") != std::string::npos);
  CHECK(user.at("ttl_seconds").is_int64());  // parsed back: an integer, not a double
  CHECK(user.at("ttl_ms").as_int64() == 300000);
  auto params = user.at("params").as_array();
  REQUIRE(params.size() == 2);
  CHECK(params[0].as_object().at("name").as_string() == "org_id");
  CHECK(params[0].as_object().at("tenant").as_bool());
  CHECK(params[1].as_object().at("type").as_string() == "uuid");
  CHECK(list[1].as_object().at("scope").as_string() == "global");
}

TEST_CASE("with a token, /v1 needs the bearer token, health endpoints stay open") {
  auto cfg = make_config();
  CHECK_FALSE(http::check_auth(cfg, "/v1/entities", ""));  // no token configured: open
  cfg.auth.token = "0123456789abcdef0123";
  auto missing = http::check_auth(cfg, "/v1/entities", "");
  REQUIRE(missing);
  CHECK(missing->status == 401);
  REQUIRE(missing->header("WWW-Authenticate"));
  CHECK(json::parse(missing->body).at("error").as_string() == "unauthorized");
  CHECK(http::check_auth(cfg, "/v1/entities", "Bearer 0123456789abcdef0124"));   // one byte off
  CHECK(http::check_auth(cfg, "/v1/entities", "Bearer 0123456789abcdef012"));    // a prefix
  CHECK(http::check_auth(cfg, "/v1/entities", "Bearer 0123456789abcdef01234"));  // longer
  CHECK(http::check_auth(cfg, "/v1/entities", "Basic 0123456789abcdef0123"));
  CHECK_FALSE(http::check_auth(cfg, "/v1/entities/user?x=1", "Bearer 0123456789abcdef0123"));
  CHECK_FALSE(http::check_auth(cfg, "/healthz", ""));
  CHECK_FALSE(http::check_auth(cfg, "/readyz", ""));
  // RFC 9110: the scheme is case-insensitive, and more than one space may follow it.
  CHECK_FALSE(http::check_auth(cfg, "/v1/entities", "bearer 0123456789abcdef0123"));
  CHECK_FALSE(http::check_auth(cfg, "/v1/entities", "BEARER  0123456789abcdef0123"));
  CHECK(http::check_auth(cfg, "/v1/entities", "Bearer0123456789abcdef0123"));
  CHECK(http::check_auth(cfg, "/v1/entities", "bearer 0123456789ABCDEF0123"));  // the token is not
}

TEST_CASE("absolute-form targets are routed (and checked) by their origin form") {
  CHECK(http::origin_form("http://localhost:7070/healthz") == "/healthz");
  CHECK(http::origin_form("HTTPS://h/v1/entities/user?org_id=1") == "/v1/entities/user?org_id=1");
  CHECK(http::origin_form("http://h") == "/");
  CHECK(http::origin_form("http://h?x=1") == "/");
  CHECK(http::origin_form("/readyz") == "/readyz");
  CHECK(http::origin_form("*") == "*");
  // The auth check sees /v1 in the origin form: an absolute target cannot skip it.
  auto cfg = make_config();
  cfg.auth.token = "0123456789abcdef0123";
  CHECK(http::check_auth(cfg, http::origin_form("http://h/v1/entities"), ""));
}

TEST_CASE("error bodies are valid JSON even when the request holds invalid UTF-8") {
  auto cfg = make_config();
  auto r = http::route(cfg, "GET", std::string("/v1/entities/us\xff\xfe" "er?org_id=") + kOrg);
  CHECK(r.answer.status == 404);
  auto b = json::parse(r.answer.body).as_object();  // throws on invalid UTF-8
  CHECK(std::string(b.at("entity").as_string()) == "us\xef\xbf\xbd\xef\xbf\xbd" "er");
  auto p = http::route(cfg, "GET", "/v1/entities/user?org_id=" + kOrg + "&user_id=1&%C3%28=1");
  CHECK(p.answer.status == 400);
  CHECK_NOTHROW(json::parse(p.answer.body));
}

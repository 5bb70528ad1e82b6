#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include "../entity_fixture.hpp"
#include "sidecache/http/router.hpp"

using namespace sidecache;
using config::ParamType;
using config::Scope;
using Kind = http::Route::Kind;
using IScope = http::Invalidation::Scope;
namespace json = boost::json;

namespace {

config::Config make_config() {
  config::Config c;
  c.key_prefix = "sc:";
  c.tenant.param = "org_id";
  c.tenant.type = ParamType::uuid;
  c.entities.push_back(test::make_entity("user", Scope::tenant, {{"user_id", ParamType::uuid}}));
  c.entities.push_back(test::make_entity("feature_flags", Scope::global, {}));
  c.entities.push_back(test::make_entity("plan", Scope::global, {{"id", ParamType::integer}}));
  return c;
}

const std::string kOrg = "11111111-1111-1111-1111-111111111111";
const std::string kUid = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa";

http::Route post(const config::Config& cfg, const std::string& body) {
  return http::route(cfg, "POST", "/v1/invalidate", body);
}

std::string error_of(const http::Route& r) { return std::string(json::parse(r.answer.body).at("error").as_string()); }

}  // namespace

TEST_CASE("DELETE invalidates exactly the key the same GET reads") {
  auto cfg = make_config();
  std::string target = "/v1/entities/user?org_id=" + kOrg + "&user_id=" + kUid;
  auto del = http::route(cfg, "DELETE", target);
  auto get = http::route(cfg, "GET", target);
  REQUIRE(del.kind == Kind::invalidate);
  CHECK(del.invalidation.scope == IScope::key);
  CHECK(del.invalidation.request.key == get.request.key);
  CHECK(del.invalidation.tenant == kOrg);
  // The same 400s as GET.
  auto bad = http::route(cfg, "DELETE", "/v1/entities/user?org_id=" + kOrg);
  CHECK(bad.answer.status == 400);
  CHECK(error_of(bad) == "missing_param");
}

TEST_CASE("POST /v1/invalidate: the four scopes") {
  auto cfg = make_config();
  auto key = post(cfg, R"({"entity":"user","params":{"org_id":")" + kOrg + R"(","user_id":")" + kUid + R"("}})");
  REQUIRE(key.kind == Kind::invalidate);
  CHECK(key.invalidation.scope == IScope::key);
  CHECK(key.invalidation.request.key == http::route(cfg, "GET", "/v1/entities/user?org_id=" + kOrg + "&user_id=" + kUid).request.key);

  auto entity = post(cfg, R"({"entity":"user","tenant":")" + kOrg + R"("})");
  REQUIRE(entity.kind == Kind::invalidate);
  CHECK(entity.invalidation.scope == IScope::entity);
  CHECK(entity.invalidation.tenant == kOrg);

  auto tenant = post(cfg, R"({"tenant":"11111111-1111-1111-1111-11111111111A"})");
  REQUIRE(tenant.kind == Kind::invalidate);
  CHECK(tenant.invalidation.scope == IScope::tenant);
  CHECK(tenant.invalidation.tenant == "11111111-1111-1111-1111-11111111111a");  // normalised like a GET

  auto global = post(cfg, R"({"entity":"feature_flags"})");
  REQUIRE(global.kind == Kind::invalidate);
  CHECK(global.invalidation.scope == IScope::entity);
  CHECK(global.invalidation.tenant.empty());

  auto all = post(cfg, R"({"entity":"user"})");
  REQUIRE(all.kind == Kind::invalidate);
  CHECK(all.invalidation.scope == IScope::entity_all_tenants);

  auto global_key = post(cfg, R"({"entity":"plan","params":{"id":42}})");
  REQUIRE(global_key.kind == Kind::invalidate);
  CHECK(global_key.invalidation.request.key == "sc:g:plan:0123abcd:42");
}

TEST_CASE("POST /v1/invalidate: every malformed body is a 400 naming the problem") {
  auto cfg = make_config();
  struct Case { std::string body, error, field; };
  std::vector<Case> cases = {
      {"{not json", "bad_json", ""},
      {"[1,2]", "bad_json", ""},
      {"{}", "missing_field", "field"},
      {R"({"entity":"user","tenat":"x"})", "unknown_field", "field"},
      // A key given twice: the parser would keep the last, silently.
      {R"({"tenant":"11111111-1111-1111-1111-111111111111","tenant":"22222222-2222-2222-2222-222222222222"})", "duplicate_field", "field"},
      {R"({"entity":"user","params":{"org_id":"a","org_id":"b"}})", "duplicate_field", "field"},
      {R"({"entity":42})", "bad_field", "field"},
      {R"({"entity":"nope"})", "unknown_entity", "entity"},
      {R"({"tenant":"acme"})", "bad_param", "param"},
      {R"({"tenant":true})", "bad_field", "field"},
      {R"({"entity":"feature_flags","tenant":")" + kOrg + R"("})", "bad_field", "field"},
      {R"({"entity":"user","params":{"org_id":")" + kOrg + R"("}})", "missing_param", "param"},
      {R"({"entity":"user","params":{"org_id":")" + kOrg + R"(","user_id":")" + kUid + R"(","x":"1"}})", "unknown_param", "param"},
      {R"({"entity":"user","params":{"org_id":")" + kOrg + R"(","user_id":[1]}})", "bad_param", "param"},
      {R"({"entity":"user","params":"x"})", "bad_field", "field"},
      {R"({"params":{"org_id":")" + kOrg + R"("}})", "missing_field", "field"},
      {R"({"entity":"user","tenant":")" + kOrg + R"(","params":{}})", "bad_field", "field"},
  };
  for (const auto& c : cases) {
    INFO(c.body);
    auto r = post(cfg, c.body);
    REQUIRE(r.kind == Kind::answer);
    CHECK(r.answer.status == 400);
    CHECK(error_of(r) == c.error);
    auto o = json::parse(r.answer.body).as_object();
    CHECK_FALSE(o.at("message").as_string().empty());
    if (!c.field.empty()) CHECK(o.contains(c.field));
  }
  CHECK(http::route(cfg, "GET", "/v1/invalidate").answer.status == 405);
}

TEST_CASE("POST /v1/invalidate with a tag: per tenant, or alone for global entities' tags, and every mistake names its field") {
  auto cfg = make_config();
  auto r = post(cfg, R"({"tenant":"11111111-1111-1111-1111-11111111111F","tag":"project:42"})");
  REQUIRE(r.kind == Kind::invalidate);
  CHECK(r.invalidation.scope == IScope::tag);
  CHECK(r.invalidation.tenant == kOrg.substr(0, 35) + "f");  // normalised as a GET's tenant
  CHECK(r.invalidation.tag == "project:42");
  CHECK(r.invalidation.entity == nullptr);
  auto field = [](const http::Route& x) { return std::string(json::parse(x.answer.body).at("field").as_string()); };
  // No global entity has tags: a tag without a tenant is a mistake.
  auto alone = post(cfg, R"({"tag":"project:42"})");
  CHECK(alone.answer.status == 400);
  CHECK(field(alone) == "tenant");
  cfg.entities[1].tags.push_back({"flags", {{"flags", -1, ""}}});
  auto global = post(cfg, R"({"tag":"flags"})");
  REQUIRE(global.kind == Kind::invalidate);
  CHECK(global.invalidation.tenant.empty());
  for (auto [body, f] : std::vector<std::pair<std::string, std::string>>{
           {R"({"tenant":")" + kOrg + R"(","tag":"p","entity":"user"})", "entity"},
           {R"({"tenant":")" + kOrg + R"(","tag":"p","params":{}})", "params"},
           {R"({"tenant":")" + kOrg + R"(","tag":""})", "tag"},
           {R"({"tenant":")" + kOrg + R"(","tag":7})", "tag"},
           {R"({"tenant":")" + kOrg + R"(","tag":")" + std::string(257, 'x') + R"("})", "tag"},
           {R"({"tenant":")" + kOrg + R"(","tag":"a\nb"})", "tag"},
           {R"({"tenant":")" + kOrg + R"(","tag":"p","colour":1})", "colour"},
           {R"({"tenant":[1],"tag":"p"})", "tenant"}}) {
    INFO(body);
    auto bad = post(cfg, body);
    CHECK(bad.answer.status == 400);
    CHECK(field(bad) == f);
  }
  auto bad_tenant = post(cfg, R"({"tenant":"acme","tag":"p"})");
  CHECK(bad_tenant.answer.status == 400);
  CHECK(json::parse(bad_tenant.answer.body).at("param").as_string() == "org_id");
}

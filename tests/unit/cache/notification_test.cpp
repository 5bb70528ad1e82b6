#include <catch2/catch.hpp>

#include "../entity_fixture.hpp"
#include <set>

#include "sidecache/cache/notification.hpp"
#include "sidecache/pg/triggers.hpp"

using namespace sidecache;
using config::ParamType;
using config::Scope;
using IScope = cache::Invalidation::Scope;

namespace {

const std::string kOrg = "11111111-1111-1111-1111-111111111111";
const std::string kOrg2 = "22222222-2222-2222-2222-222222222222";
const std::string kUid = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa";
const std::string kUid2 = "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb";

config::Config make_config() {
  config::Config c;
  c.key_prefix = "sc:";
  auto user = test::make_entity("user", Scope::tenant, {{"user_id", ParamType::uuid}});
  user.invalidate_on.push_back({"users", "org_id", {{"user_id", "id"}}});
  auto page = test::make_entity("users_page", Scope::tenant, {{"page", ParamType::integer}});
  page.invalidate_on.push_back({"users", "org_id", {}});
  auto org = test::make_entity("org_config", Scope::tenant, {});
  org.invalidate_on.push_back({"public.orgs", "id", {}});
  auto flags = test::make_entity("feature_flags", Scope::global, {});
  flags.invalidate_on.push_back({"feature_flags", "", {}});
  auto untouched = test::make_entity("other", Scope::tenant, {});
  c.entities = {user, page, org, flags, untouched};
  return c;
}

std::vector<cache::Invalidation> map(const config::Config& c, const std::string& payload) {
  std::string error;
  auto out = cache::invalidations_for(c, payload, error);
  INFO(error);
  CHECK(error.empty());
  return out;
}

const cache::Invalidation* find(const std::vector<cache::Invalidation>& v, const std::string& entity, IScope scope,
                               const std::string& tenant = "") {
  for (const auto& i : v)
    if (i.entity && i.entity->name == entity && i.scope == scope && i.tenant == tenant) return &i;
  return nullptr;
}

}  // namespace

TEST_CASE("an UPDATE invalidates the mapped key and the tenant's pages") {
  auto c = make_config();
  auto v = map(c, R"({"table":"users","schema":"public","op":"UPDATE","old":{"org_id":")" + kOrg + R"(","id":")" + kUid +
                      R"("},"new":{"org_id":")" + kOrg + R"(","id":")" + kUid + R"("}})");
  REQUIRE(v.size() == 2);  // old and new images name the same key: deduplicated
  auto* key = find(v, "user", IScope::key, kOrg);
  REQUIRE(key);
  CHECK(key->request.key == "sc:t:" + kOrg + ":user:0123abcd:" + kUid);
  CHECK(find(v, "users_page", IScope::entity, kOrg));
}

TEST_CASE("an UPDATE that moves a row between keys invalidates both") {
  auto c = make_config();
  auto v = map(c, R"({"table":"users","schema":"public","op":"UPDATE","old":{"org_id":")" + kOrg + R"(","id":")" + kUid +
                      R"("},"new":{"org_id":")" + kOrg2 + R"(","id":")" + kUid2 + R"("}})");
  std::set<std::string> keys;
  for (const auto& i : v)
    if (i.scope == IScope::key) keys.insert(i.request.key);
  CHECK(keys == std::set<std::string>{"sc:t:" + kOrg + ":user:0123abcd:" + kUid, "sc:t:" + kOrg2 + ":user:0123abcd:" + kUid2});
  CHECK(find(v, "users_page", IScope::entity, kOrg));
  CHECK(find(v, "users_page", IScope::entity, kOrg2));
}

TEST_CASE("INSERT and DELETE use the image they have") {
  auto c = make_config();
  auto ins = map(c, R"({"table":"users","schema":"public","op":"INSERT","old":null,"new":{"org_id":")" + kOrg +
                        R"(","id":")" + kUid + R"("}})");
  CHECK(find(ins, "user", IScope::key, kOrg));
  auto del = map(c, R"({"table":"users","schema":"public","op":"DELETE","old":{"org_id":")" + kOrg + R"(","id":")" + kUid +
                        R"("},"new":null})");
  CHECK(find(del, "user", IScope::key, kOrg));
}

TEST_CASE("values are normalised like request params, and unusable ones widen the scope") {
  auto c = make_config();
  auto upper = map(c, R"({"table":"users","op":"INSERT","new":{"org_id":")" + kOrg + R"(","id":"AAAAAAAA-AAAA-AAAA-AAAA-AAAAAAAAAAAA"}})");
  auto* key = find(upper, "user", IScope::key, kOrg);
  REQUIRE(key);
  CHECK(key->request.key.find(kUid) != std::string::npos);
  // A null id cannot name a key: the user entity of that tenant goes.
  auto null_id = map(c, R"({"table":"users","op":"INSERT","new":{"org_id":")" + kOrg + R"(","id":null}})");
  CHECK(find(null_id, "user", IScope::entity, kOrg));
  // No tenant: every tenant.
  auto no_tenant = map(c, R"({"table":"users","op":"INSERT","new":{"org_id":null,"id":")" + kUid + R"("}})");
  CHECK(find(no_tenant, "user", IScope::entity_all_tenants));
  CHECK(find(no_tenant, "users_page", IScope::entity_all_tenants));
}

TEST_CASE("tenant columns, schemas, globals and TRUNCATE") {
  auto c = make_config();
  auto org = map(c, R"({"table":"orgs","schema":"public","op":"UPDATE","old":{"id":")" + kOrg + R"("},"new":{"id":")" + kOrg + R"("}})");
  REQUIRE(org.size() == 1);
  CHECK(find(org, "org_config", IScope::entity, kOrg));
  CHECK(map(c, R"({"table":"orgs","schema":"billing","op":"UPDATE","new":{"id":")" + kOrg + R"("}})").empty());
  auto flags = map(c, R"({"table":"feature_flags","schema":"public","op":"UPDATE","old":{},"new":{}})");
  REQUIRE(flags.size() == 1);
  CHECK(find(flags, "feature_flags", IScope::entity));
  auto trunc = map(c, R"({"table":"users","schema":"public","op":"TRUNCATE","old":null,"new":null})");
  CHECK(find(trunc, "user", IScope::entity_all_tenants));
  CHECK(find(trunc, "users_page", IScope::entity_all_tenants));
  CHECK(map(c, R"({"table":"invoices","op":"INSERT","new":{}})").empty());
}

TEST_CASE("a payload that is not ours is reported, not acted on") {
  auto c = make_config();
  std::string error;
  CHECK(cache::invalidations_for(c, "hello", error).empty());
  CHECK_FALSE(error.empty());
  error.clear();
  CHECK(cache::invalidations_for(c, R"({"op":"INSERT"})", error).empty());
  CHECK_FALSE(error.empty());
}

TEST_CASE("trigger SQL covers each table once, with only the mapped columns, and drops cleanly") {
  auto c = make_config();
  c.invalidation.channel = "chan";
  std::string sql = pg::trigger_sql(c);
  CHECK(sql.find("BEGIN;") != std::string::npos);
  CHECK(sql.find("COMMIT;") != std::string::npos);
  CHECK(sql.find("CREATE OR REPLACE FUNCTION sidecache_notify_users()") != std::string::npos);
  CHECK(sql.find("CREATE OR REPLACE FUNCTION public.sidecache_notify_orgs()") != std::string::npos);
  CHECK(sql.find("json_build_object('id', OLD.id, 'org_id', OLD.org_id)") != std::string::npos);
  CHECK(sql.find("pg_notify('chan'") != std::string::npos);
  CHECK(sql.find("DROP TRIGGER IF EXISTS sidecache_invalidate ON users;") != std::string::npos);
  CHECK(sql.find("AFTER TRUNCATE ON users") != std::string::npos);
  // users is named by two entities and still gets one function.
  CHECK(sql.find("REPLACE FUNCTION sidecache_notify_users()") == sql.rfind("REPLACE FUNCTION sidecache_notify_users()"));
  std::string drop = pg::trigger_sql(c, true);
  CHECK(drop.find("CREATE") == std::string::npos);
  CHECK(drop.find("DROP FUNCTION IF EXISTS sidecache_notify_users();") != std::string::npos);
}

// The Redis Cluster key layout: every key a read or a fill touches is in the
// value's hash slot, whatever the tenant and parameters hold; a tenant's
// keys are all in one slot; all-tenant marks have a copy in every slot.
#include <catch2/catch.hpp>

#include <random>
#include <map>
#include <set>

#include "../entity_fixture.hpp"
#include "sidecache/cache/cluster_keys.hpp"
#include "sidecache/cache/key.hpp"
#include "sidecache/config/tag_template.hpp"
#include "sidecache/redis/cluster_slots.hpp"

using namespace sidecache;
using config::ParamType;
using config::Scope;

namespace {

const std::string kNasty = "{}:%*?[]\\ \t\x01\x7f" "abc}{x{y}\xe2\x98\xa2";

std::string random_value(std::mt19937& rng) {
  std::uniform_int_distribution<std::size_t> len(0, 8), pick(0, kNasty.size() - 1);
  std::string s;
  for (std::size_t i = len(rng); i > 0; --i) s += kNasty[pick(rng)];
  return s;
}

config::TagTemplate param_tag(const config::Entity& e, const std::string& text) {
  auto index = [&](std::string_view n) {
    for (std::size_t i = 0; i < e.params.size(); ++i)
      if (e.params[i].name == n) return static_cast<int>(i);
    return -1;
  };
  std::string why;
  auto t = config::parse_tag_template(text, config::TagSource::entity, index, false, why);
  INFO(why);
  REQUIRE(t);
  return *t;
}

}  // namespace

TEST_CASE("cluster keys: a read's keys and the fill's lease are in the value's slot, for any tenant and parameters") {
  auto tenant = test::make_entity("project_tasks", Scope::tenant, {{"project_id", ParamType::string}});
  tenant.tags.push_back(param_tag(tenant, "project:{project_id}"));
  auto global = test::make_entity("country", Scope::global, {{"code", ParamType::string}});
  global.tags.push_back(param_tag(global, "code:{code}"));
  std::mt19937 rng(7);
  std::map<std::string, std::pair<std::string, std::vector<std::string>>> seen;  // key -> (entity, values)
  std::set<std::uint16_t> global_slots;
  for (int i = 0; i < 3000; ++i) {
    for (const auto* e : {&tenant, &global}) {
      std::vector<std::string> values;
      for (std::size_t p = 0; p < e->params.size(); ++p) values.push_back(random_value(rng));
      std::string key = cache::cluster_value_key("sc:", *e, values);
      const std::uint16_t slot = redis::key_slot(key);
      auto keys = cache::cluster_read_keys("sc:", *e, values, key);
      REQUIRE(keys.front() == key);
      REQUIRE(keys.size() >= (e->scope == Scope::tenant ? 4u : 2u));  // (+ the param tag when it renders)
      for (const auto& k : keys) {
        INFO(k);
        REQUIRE(redis::key_slot(k) == slot);
      }
      REQUIRE(redis::key_slot(cache::lease_key("sc:", key)) == slot);
      if (e->scope == Scope::tenant) {
        // The tenant's hash tag is the tenant, encoded: every key of it is in one slot.
        REQUIRE(redis::hashed_part(key) == "=" + cache::encode_component(values[0]));
      } else {
        global_slots.insert(slot);
      }
      // Different instances never share a key (the plain layout's injectivity, kept).
      auto [it, fresh] = seen.emplace(key, std::make_pair(e->name, values));
      if (!fresh) REQUIRE(it->second == std::make_pair(e->name, values));
    }
  }
  CHECK(seen.size() > 4000);
  CHECK(global_slots.size() > 2000);  // global entities spread over the slots
}

TEST_CASE("cluster keys: two entities of one tenant share its slot, and an all-tenant mark has a copy in every slot") {
  auto user = test::make_entity("user", Scope::tenant, {{"user_id", ParamType::uuid}});
  auto org = test::make_entity("org", Scope::tenant, {});
  const std::string t = "11111111-1111-1111-1111-111111111111";
  std::string a = cache::cluster_value_key("sc:", user, {t, "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"});
  std::string b = cache::cluster_value_key("sc:", org, {t});
  CHECK(a == "sc:t:{=" + t + "}:user:0123abcd:aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa");
  CHECK(redis::key_slot(a) == redis::key_slot(b));
  std::set<std::uint16_t> copies;
  for (unsigned s = 0; s < redis::kSlots; ++s)
    copies.insert(redis::key_slot(cache::cluster_slot_copy("sc:", static_cast<std::uint16_t>(s), "wm:e:user")));
  CHECK(copies.size() == redis::kSlots);
}

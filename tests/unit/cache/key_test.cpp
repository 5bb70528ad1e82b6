#include <catch2/catch.hpp>

#include <random>
#include <set>

#include "../entity_fixture.hpp"
#include "sidecache/cache/key.hpp"

using namespace sidecache;
using config::ParamType;
using config::Scope;

namespace {

// The left inverse of build_key: splits on ':' and percent-decodes. If it
// recovers every input exactly, no two inputs can share a key.
std::vector<std::string> parse_key(std::string key, std::string_view prefix) {
  REQUIRE(key.compare(0, prefix.size(), prefix) == 0);
  key.erase(0, prefix.size());
  std::vector<std::string> parts;
  std::string cur;
  for (std::size_t i = 0; i <= key.size(); ++i) {
    if (i == key.size() || key[i] == ':') {
      parts.push_back(cur);
      cur.clear();
    } else if (key[i] == '%') {
      REQUIRE(i + 2 < key.size());
      cur += static_cast<char>(std::stoi(key.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      cur += key[i];
    }
  }
  return parts;
}

const std::string kNasty = ":%*?[]{}\\ \t\r\n\x01\x7f" "abc%3A:%25\xe2\x98\xa2";

std::string random_value(std::mt19937& rng) {
  std::uniform_int_distribution<std::size_t> len(0, 6), pick(0, kNasty.size() - 1);
  std::string s;
  for (std::size_t i = len(rng); i > 0; --i) s += kNasty[pick(rng)];
  return s;
}

}  // namespace

TEST_CASE("keys read like the documented layout") {
  auto user = test::make_entity("user", Scope::tenant, {{"user_id", ParamType::uuid}});
  CHECK(cache::build_key("sc:", user, {"11111111-1111-1111-1111-111111111111", "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"}) ==
        "sc:t:11111111-1111-1111-1111-111111111111:user:0123abcd:aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa");
  auto flags = test::make_entity("feature_flags", Scope::global, {});
  CHECK(cache::build_key("sc:", flags, {}) == "sc:g:feature_flags:0123abcd");
}

TEST_CASE("every layout-breaking or glob byte is percent-encoded") {
  CHECK(cache::encode_component("a:b") == "a%3Ab");
  CHECK(cache::encode_component("100%") == "100%25");
  CHECK(cache::encode_component("*?[]{}") == "%2A%3F%5B%5D%7B%7D");
  CHECK(cache::encode_component("a b\tc\n") == "a%20b%09c%0A");
  CHECK(cache::encode_component("\x7f\\") == "%7F%5C");
  CHECK(cache::encode_component("caf\xc3\xa9") == "caf\xc3\xa9");  // UTF-8 kept as is
  for (char c : std::string(":*?[]{} \\")) CHECK(cache::encode_component(std::string(1, c)).find(c) == std::string::npos);
}

TEST_CASE("keys are injective on adversarial values (the decoder recovers every input)") {
  auto e = test::make_entity("search", Scope::tenant, {{"q", ParamType::string}, {"tag", ParamType::string}},
                             ParamType::slug);
  std::mt19937 rng(42);
  std::set<std::string> keys;
  std::set<std::vector<std::string>> inputs;
  for (int i = 0; i < 20000; ++i) {
    std::vector<std::string> values{random_value(rng), random_value(rng), random_value(rng)};
    std::string key = cache::build_key("sc:", e, values);
    auto parts = parse_key(key, "sc:");
    REQUIRE(parts.size() == 6);
    CHECK(parts[0] == "t");
    CHECK(parts[2] == "search");
    CHECK(parts[1] == values[0]);
    CHECK(parts[4] == values[1]);
    CHECK(parts[5] == values[2]);
    // No raw glob character ever reaches Redis: KEYS/SCAN patterns cannot
    // match across tenants by accident.
    for (char c : std::string("*?[]{}")) CHECK(key.find(c) == std::string::npos);
    keys.insert(key);
    inputs.insert(values);
  }
  CHECK(keys.size() == inputs.size());
}

TEST_CASE("classic collisions are impossible") {
  auto e = test::make_entity("pair", Scope::tenant, {{"a", ParamType::string}, {"b", ParamType::string}},
                             ParamType::slug);
  // Shifting a separator between components.
  CHECK(cache::build_key("p:", e, {"t", "x:y", "z"}) != cache::build_key("p:", e, {"t", "x", "y:z"}));
  // A tenant that embeds another tenant's key layout.
  CHECK(cache::build_key("p:", e, {"acme:pair:0123abcd:x", "y", "z"}) != cache::build_key("p:", e, {"acme", "x", "y"}));
  // An already-encoded value versus its decoded form.
  CHECK(cache::build_key("p:", e, {"t", "%3A", ""}) != cache::build_key("p:", e, {"t", ":", ""}));
  // Empty values keep their place.
  CHECK(cache::build_key("p:", e, {"t", "", "x"}) != cache::build_key("p:", e, {"t", "x", ""}));
  // Global and tenant entities never share a key space.
  auto g = test::make_entity("pair", Scope::global, {{"a", ParamType::string}, {"b", ParamType::string}});
  CHECK(cache::build_key("p:", g, {"t", "x"}).rfind("p:g:", 0) == 0);
}

TEST_CASE("the same user id under two tenants gives two keys") {
  auto user = test::make_entity("user", Scope::tenant, {{"user_id", ParamType::uuid}});
  std::string uid = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa";
  CHECK(cache::build_key("sc:", user, {"11111111-1111-1111-1111-111111111111", uid}) !=
        cache::build_key("sc:", user, {"22222222-2222-2222-2222-222222222222", uid}));
}

TEST_CASE("parse_key gives back the values of a key and refuses anything build_key would not write") {
  using namespace sidecache;
  config::Entity e;
  e.name = "user";
  e.scope = config::Scope::tenant;
  e.params = {{"org_id", config::ParamType::uuid, 256, true}, {"user_id", config::ParamType::string, 256, false}};
  e.shape_hash = "abcd1234";
  for (std::vector<std::string> v : std::vector<std::vector<std::string>>{
           {"11111111-1111-1111-1111-111111111111", "plain"}, {"t", "a:b%c*d?e[f]g{h}i\\j k\x01\x7f"}, {"", ""},
           {"x", "ünï 漢字"}}) {
    std::string key = cache::build_key("sc:", e, v);
    auto back = cache::parse_key("sc:", e, key);
    REQUIRE(back);
    CHECK(*back == v);
  }
  for (const char* bad : {"sc:t:o:user:abcd1234", "sc:t:o:user:abcd1234:a:b", "sc:t:o:other:abcd1234:a",
                          "sc:t:o:user:ffff0000:a", "sc:g:user:abcd1234:a", "xx:t:o:user:abcd1234:a",
                          "sc:t:o:user:abcd1234:%3", "sc:t:o:user:abcd1234:%3a", "sc:t:o:user:abcd1234:%41",
                          "sc:wm:t:o:user", "sc:ls:t:o:user:abcd1234:a"})
    CHECK_FALSE(cache::parse_key("sc:", e, bad));
  config::Entity g = e;
  g.scope = config::Scope::global;
  g.params = {{"id", config::ParamType::integer, 256, false}};
  CHECK(cache::parse_key("sc:", g, "sc:g:user:abcd1234:42") == std::vector<std::string>{"42"});
}

#include <catch2/catch.hpp>

#include "../entity_fixture.hpp"
#include "sidecache/cache/params.hpp"

using namespace sidecache;
using config::ParamType;
using config::Scope;

namespace {
std::string norm(ParamType t, std::string_view raw, std::size_t max_len = 256) {
  config::ParamSpec p{"p", t, max_len, false};
  std::string why;
  auto v = cache::normalize(p, raw, why);
  return v ? *v : "ERR: " + why;
}
}  // namespace

TEST_CASE("uuids are validated and lower-cased") {
  CHECK(norm(ParamType::uuid, "123E4567-E89B-12D3-A456-426614174000") == "123e4567-e89b-12d3-a456-426614174000");
  CHECK(norm(ParamType::uuid, "123e4567e89b12d3a456426614174000").rfind("ERR", 0) == 0);
  CHECK(norm(ParamType::uuid, "123e4567-e89b-12d3-a456-42661417400g").rfind("ERR", 0) == 0);
  CHECK(norm(ParamType::uuid, "").rfind("ERR", 0) == 0);
}

TEST_CASE("ints are canonical decimal") {
  CHECK(norm(ParamType::integer, "42") == "42");
  CHECK(norm(ParamType::integer, "007") == "7");
  CHECK(norm(ParamType::integer, "+5") == "5");
  CHECK(norm(ParamType::integer, "-0") == "0");
  CHECK(norm(ParamType::integer, "-9223372036854775808") == "-9223372036854775808");
  for (const char* bad : {"", "1.5", "1e3", "0x10", " 1", "9223372036854775808", "-", "12a"})
    CHECK(norm(ParamType::integer, bad).rfind("ERR", 0) == 0);
}

TEST_CASE("slugs are lower-case letters, digits, - and _") {
  CHECK(norm(ParamType::slug, "acme-corp_2") == "acme-corp_2");
  for (const char* bad : {"", "Acme", "a b", "a:b", "a/b", "é"}) CHECK(norm(ParamType::slug, bad).rfind("ERR", 0) == 0);
  CHECK(norm(ParamType::slug, std::string(129, 'a')).rfind("ERR", 0) == 0);
}

TEST_CASE("strings must be UTF-8 without NUL and within max_len code points") {
  CHECK(norm(ParamType::string, "h\xc3\xa9llo: *[x]", 11) == "h\xc3\xa9llo: *[x]");
  CHECK(norm(ParamType::string, "\xe2\x98\xa2\xe2\x98\xa2", 2) == "\xe2\x98\xa2\xe2\x98\xa2");
  CHECK(norm(ParamType::string, "h\xc3\xa9llo: *[x]", 10).rfind("ERR", 0) == 0);
  CHECK(norm(ParamType::string, "abc", 2).rfind("ERR", 0) == 0);
  CHECK(norm(ParamType::string, "\xc3").rfind("ERR", 0) == 0);            // truncated
  CHECK(norm(ParamType::string, "\xc0\xaf").rfind("ERR", 0) == 0);        // overlong
  CHECK(norm(ParamType::string, "\xed\xa0\x80").rfind("ERR", 0) == 0);    // surrogate
  CHECK(norm(ParamType::string, std::string("a\0b", 3)).rfind("ERR", 0) == 0);
}

TEST_CASE("query strings are percent-decoded") {
  auto r = cache::parse_query("a=1&b=x%20y+z&&c=%3A%25&d");
  REQUIRE(std::holds_alternative<cache::QueryPairs>(r));
  auto q = std::get<cache::QueryPairs>(r);
  REQUIRE(q.size() == 4);
  CHECK(q[1].second == "x y z");
  CHECK(q[2].second == ":%");
  CHECK(q[3].first == "d");
  CHECK(q[3].second.empty());
  auto bad = cache::parse_query("a=%zz");
  REQUIRE(std::holds_alternative<cache::ParamError>(bad));
  CHECK(std::get<cache::ParamError>(bad).param == "a");
}

TEST_CASE("binding: every param once, nothing unknown, each value typed") {
  auto e = test::make_entity("user", Scope::tenant, {{"user_id", ParamType::uuid}});
  auto bind = [&](cache::QueryPairs q) { return cache::bind_params(e, q); };
  const std::string org = "11111111-1111-1111-1111-111111111111", uid = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa";

  auto ok = bind({{"user_id", uid}, {"org_id", org}});
  REQUIRE(std::holds_alternative<std::vector<std::string>>(ok));
  CHECK(std::get<std::vector<std::string>>(ok) == std::vector<std::string>{org, uid});  // declared order

  auto missing = std::get<cache::ParamError>(bind({{"user_id", uid}}));
  CHECK(missing.code == "missing_param");
  CHECK(missing.param == "org_id");

  auto unknown = std::get<cache::ParamError>(bind({{"org_id", org}, {"user_id", uid}, {"limit", "5"}}));
  CHECK(unknown.code == "unknown_param");
  CHECK(unknown.param == "limit");

  auto bad = std::get<cache::ParamError>(bind({{"org_id", "acme"}, {"user_id", uid}}));
  CHECK(bad.code == "bad_param");
  CHECK(bad.param == "org_id");

  auto twice = std::get<cache::ParamError>(bind({{"org_id", org}, {"org_id", org}, {"user_id", uid}}));
  CHECK(twice.code == "bad_param");
  CHECK(twice.message.find("more than once") != std::string::npos);
}

#include <catch2/catch.hpp>

#include "sidecache/config/sql_params.hpp"

using namespace sidecache::config;

TEST_CASE("named params become positional, the same name the same number") {
  auto r = rewrite_named_params("SELECT * FROM u WHERE org_id = :org_id AND id = :user_id OR owner = :org_id");
  CHECK(r.sql == "SELECT * FROM u WHERE org_id = $1 AND id = $2 OR owner = $1");
  CHECK(r.order == std::vector<std::string>{"org_id", "user_id"});
  CHECK(r.uses.size() == 3);
  CHECK(r.uses[1].name == "user_id");
}

TEST_CASE("casts, strings, identifiers, comments and dollar quotes are left alone") {
  auto r = rewrite_named_params(
      "SELECT :a::int, 'x :no', E'it\\'s :no', \"col:no\", $$ :no $$, $t$ :no $t$ -- :no\n"
      "/* :no /* nested :no */ */ , :b, created_at::date");
  CHECK(r.order == std::vector<std::string>{"a", "b"});
  CHECK(r.sql ==
        "SELECT $1::int, 'x :no', E'it\\'s :no', \"col:no\", $$ :no $$, $t$ :no $t$ -- :no\n"
        "/* :no /* nested :no */ */ , $2, created_at::date");
}

TEST_CASE("doubled quotes inside strings do not end them") {
  auto r = rewrite_named_params("SELECT 'it''s :no' || :yes");
  CHECK(r.order == std::vector<std::string>{"yes"});
  CHECK(r.sql == "SELECT 'it''s :no' || $1");
}

TEST_CASE("positional params written by hand are reported") {
  auto r = rewrite_named_params("SELECT :x, $1, '$2'");
  REQUIRE(r.positional.size() == 1);
  CHECK(r.positional[0] == 11);
}

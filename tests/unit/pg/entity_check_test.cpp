#include <catch2/catch.hpp>

#include "sidecache/pg/entity_check.hpp"

using sidecache::pg::plan_filters_by;

TEST_CASE("entity check: the tenant param must appear in a condition of the plan, not only in its output") {
  const std::string filtered = R"(Limit
  Output: (row_to_json(_sidecache_row.*))::text
  ->  Index Scan using users_pkey on public.users
        Output: users.email, users.id
        Index Cond: (users.id = $2)
        Filter: (users.org_id = $1))";
  CHECK(plan_filters_by(filtered, 1));
  CHECK(plan_filters_by(filtered, 2));
  const std::string output_only = R"(Limit
  Output: (row_to_json(_sidecache_row.*))::text
  ->  Index Scan using users_pkey on public.users
        Output: ($1)::text, users.email
        Index Cond: (users.id = $2))";
  CHECK_FALSE(plan_filters_by(output_only, 1));
  CHECK(plan_filters_by(output_only, 2));
  // $1 is not $12, and a join's condition counts.
  CHECK_FALSE(plan_filters_by("  Filter: (x = $12)", 1));
  CHECK(plan_filters_by("  Hash Cond: (v.org_id = $1)", 1));
  CHECK(plan_filters_by("  Join Filter: (v.org_id = $1)", 1));
  CHECK(plan_filters_by("  One-Time Filter: ($1 = 'x'::text)", 1));
}

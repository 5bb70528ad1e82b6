#include <catch2/catch.hpp>

#include <map>
#include <string>

#include "sidecache/metrics/tenant_top.hpp"

using sidecache::metrics::TenantTop;

namespace {
std::map<std::string, std::array<std::uint64_t, 2>> as_map(const std::vector<TenantTop::Row>& rows) {
  std::map<std::string, std::array<std::uint64_t, 2>> m;
  for (const auto& r : rows) m[r.tenant] = r.counts;
  return m;
}
}  // namespace

TEST_CASE("tenant counts: only the top N tenants get series, the rest count under (other), and the series count stays bounded") {
  TenantTop top(3);
  // 5000 tenants come and go, once each; four are busy.
  for (int i = 0; i < 5000; ++i) top.add("t" + std::to_string(i), TenantTop::fill);
  for (int round = 0; round < 200; ++round)
    for (const char* busy : {"a", "b", "c", "d"}) top.add(busy, round % 4 ? TenantTop::fill : TenantTop::rejection);
  for (int i = 0; i < 50; ++i) top.add("d", TenantTop::fill);  // d, c, b lead (a ties b and c but sorts first by name)
  auto first = as_map(top.rows());
  REQUIRE(first.size() == 4);  // three tenants and (other)
  CHECK(first.count("d") == 1);
  CHECK(first.count("(other)") == 1);
  // Everything so far happened before any tenant was exported.
  CHECK(first["(other)"][0] == 5000 + 600 + 50);
  CHECK(first["(other)"][1] == 200);
  // From now on an exported tenant's events count on its own series.
  top.add("d", TenantTop::fill);
  top.add("d", TenantTop::rejection);
  top.add("zz-unknown", TenantTop::fill);
  auto second = as_map(top.rows());
  CHECK(second["d"] == std::array<std::uint64_t, 2>{1, 1});
  CHECK(second["(other)"][0] == 5000 + 600 + 50 + 1);
  CHECK(second.size() == 4);
}

TEST_CASE("tenant counts: a tenant that becomes busy joins the top, one that goes quiet leaves, and no series ever decreases") {
  TenantTop top(1);
  for (int i = 0; i < 10; ++i) top.add("early", TenantTop::fill);
  top.rows();
  top.add("early", TenantTop::fill);
  CHECK(as_map(top.rows())["early"][0] == 1);
  for (int i = 0; i < 100; ++i) top.add("late", TenantTop::fill);  // counted under (other) until it is exported
  auto m = as_map(top.rows());
  CHECK(m.count("early") == 0);
  CHECK(m.count("late") == 1);
  CHECK(m["late"][0] == 0);
  CHECK(m["(other)"][0] == 110);
  top.add("late", TenantTop::fill);
  CHECK(as_map(top.rows())["late"][0] == 1);
}

TEST_CASE("tenant counts: with top_tenants 0 everything is (other)") {
  TenantTop top(0);
  top.add("a", TenantTop::fill);
  top.add("b", TenantTop::rejection);
  auto m = as_map(top.rows());
  CHECK(m.size() == 1);
  CHECK(m["(other)"] == std::array<std::uint64_t, 2>{1, 1});
}

// GET /metrics after known traffic: exact counter values.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "harness.hpp"

using namespace sidecache::it;

namespace {
const std::string kOrg1 = "11111111-1111-1111-1111-111111111111";
double sample(const std::string& text, const std::string& series) { return metric_sample(text, series); }
}  // namespace

TEST_CASE("/metrics counts requests by entity, outcome and status class, exactly") {
  Services& s = Services::get();
  Daemon d;
  std::string uid = s.sql("INSERT INTO users (id, org_id, email, display_name) VALUES (gen_random_uuid(), '" + kOrg1 +
                          "', 'metrics@test.example', 'm') RETURNING id");
  std::string t = "/v1/entities/type_zoo?id=1";
  REQUIRE(d.get(t).header("cache-status") == "sidecache; fwd=miss; stored");
  REQUIRE(d.get(t).header("cache-status") == "sidecache; hit");
  REQUIRE(d.get(t).header("cache-status") == "sidecache; hit");
  REQUIRE(d.get(t, {"Cache-Control: no-cache"}).status == 200);
  REQUIRE(d.get("/v1/entities/type_zoo?id=zero").status == 400);
  REQUIRE(d.get("/v1/entities/type_zoo?id=999").status == 404);
  REQUIRE(http_request(d.port(), "DELETE", t).status == 200);

  auto m = d.get("/metrics");
  REQUIRE(m.status == 200);
  CHECK(m.header("content-type").rfind("text/plain; version=0.0.4", 0) == 0);
  INFO(m.body);
  CHECK(sample(m.body, R"(sidecache_requests_total{code="2xx",entity="type_zoo",outcome="miss"} )") == 1);
  CHECK(sample(m.body, R"(sidecache_requests_total{code="2xx",entity="type_zoo",outcome="hit"} )") == 2);
  CHECK(sample(m.body, R"(sidecache_requests_total{code="2xx",entity="type_zoo",outcome="bypass"} )") == 1);
  CHECK(sample(m.body, R"(sidecache_requests_total{code="4xx",entity="type_zoo",outcome="error"} )") == 1);
  CHECK(sample(m.body, R"(sidecache_requests_total{code="4xx",entity="type_zoo",outcome="miss"} )") == 1);
  CHECK(sample(m.body, R"(sidecache_request_duration_seconds_count{entity="type_zoo",outcome="hit"} )") == 2);
  CHECK(sample(m.body, R"(sidecache_fill_duration_seconds_count{entity="type_zoo"} )") == 3);
  CHECK(sample(m.body, R"(sidecache_invalidations_total{scope="key",source="api"} )") == 1);
  CHECK(sample(m.body, R"(sidecache_build_info{version=")") != -1);
  CHECK(sample(m.body, "sidecache_redis_breaker_state ") == 0);
  CHECK(sample(m.body, "sidecache_pg_pool_size ") == 4);
  // No tenant id ever becomes a label.
  CHECK(m.body.find(kOrg1) == std::string::npos);
}

TEST_CASE("/metrics declares every series alerts need at 0 before the first event") {
  Daemon d;
  auto m = d.get("/metrics");
  REQUIRE(m.status == 200);
  INFO(m.body);
  CHECK(m.body.find("# HELP sidecache_redis_failures_total") != std::string::npos);
  CHECK(m.body.find("# TYPE sidecache_redis_failures_total counter") != std::string::npos);
  for (std::string kind : {"timeout", "unavailable", "error", "breaker_open", "not_replicated"})
    CHECK(sample(m.body, "sidecache_redis_failures_total{kind=\"" + kind + "\"} ") == 0);
  CHECK(sample(m.body, "sidecache_redis_master_switches_total ") == 0);
  CHECK(sample(m.body, R"(sidecache_invalidations_total{scope="tenant",source="notify"} )") == 0);
  CHECK(sample(m.body, R"(sidecache_requests_total{code="2xx",entity="user",outcome="hit"} )") == 0);
  CHECK(sample(m.body, R"(sidecache_requests_total{code="5xx",entity="user",outcome="error"} )") == 0);
  CHECK(sample(m.body, R"(sidecache_fill_duration_seconds_count{entity="user"} )") == 0);
}

TEST_CASE("auth.metrics: token puts /metrics behind the bearer token") {
  auto dir = std::filesystem::temp_directory_path() / ("sidecache-mtoken-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "token") << "metrics-token-0123456789abcdef\n";
  Daemon::Options o;
  o.extra_main = "auth: { token_file: " + (dir / "token").string() + ", metrics: token }\n";
  Daemon d(o);
  CHECK(d.get("/metrics").status == 401);
  CHECK(d.get("/metrics", {"Authorization: Bearer metrics-token-0123456789abcdef"}).status == 200);
  Daemon::Options open;
  open.extra_main = "auth: { token_file: " + (dir / "token").string() + " }\n";
  Daemon d2(open);
  CHECK(d2.get("/metrics").status == 200);  // open by default, for scrapers
  CHECK(d2.get("/v1/entities").status == 401);
  std::filesystem::remove_all(dir);
}

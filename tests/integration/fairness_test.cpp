// Fairness between tenants: a noisy tenant's burst of cold reads against a
// quiet tenant's occasional one, with the pool's fair queue and without.
//
// No wall-clock assertion: each fill takes a number from a sequence as its
// query starts, and the test takes one just before the quiet tenant's
// request, so "how many fills started ahead of it" is counted, not timed.
// (The quiet tenant's latencies are printed; bench/run.sh reports the p99.)
#include <catch2/catch.hpp>

#include <boost/json.hpp>
#include <algorithm>
#include <atomic>
#include <thread>

#include "harness.hpp"

using namespace sidecache::it;
namespace json = boost::json;

namespace {

const std::string kNoisy = "99999999-0000-4000-8000-0000000000a1";
const std::string kQuiet = "99999999-0000-4000-8000-0000000000b2";
constexpr int kPool = 4;

// A 50 ms cold read that says when it started (its place in fair_order).
const char* kEntity = R"(name: fair_slow
scope: tenant
params:
  n: int
result: row
sql: |
  SELECT :n::int AS n, nextval('fair_order') AS fair_seq, (SELECT true FROM pg_sleep(0.05)) AS slept
  WHERE :org_id::uuid IS NOT NULL
)";

std::string target(const std::string& org, long n) {
  return "/v1/entities/fair_slow?org_id=" + org + "&n=" + std::to_string(n);
}

struct Run {
  std::vector<long> ahead;         // per quiet request: fills that started between its arrival and its own
  std::vector<double> quiet_ms;    // its latencies
  std::map<int, int> quiet_status;
  std::map<int, int> noisy_status;
  int noisy_503_without_retry = 0;
  std::string metrics;
};

Run noisy_against_quiet(bool fair, int quiet_rounds) {
  Services& s = Services::get();
  s.sql("CREATE SEQUENCE IF NOT EXISTS fair_order");
  Daemon::Options o;
  o.pool_size = kPool;
  o.statement_timeout = "10s";
  o.log_level = "info";
  o.extra_entities = {{"fair_slow.yaml", kEntity}};
  o.extra_main = std::string("tenants:\n  max_concurrent_fills: ") + std::to_string(kPool) +
                 "\n  max_queued_fills: 64\n  fair_queue: " + (fair ? "true" : "false") + "\n";
  Daemon d(o);
  Run run;
  std::atomic<bool> stop{false};
  std::atomic<long> next_n{0};
  std::mutex mu;
  std::vector<std::thread> noisy;
  for (int t = 0; t < 80; ++t)
    noisy.emplace_back([&] {
      while (!stop) {
        Response r = d.get(target(kNoisy, next_n++));
        std::lock_guard lock(mu);
        ++run.noisy_status[r.status];
        if (r.status == 503 && r.header("retry-after").empty()) ++run.noisy_503_without_retry;
      }
    });
  // The noisy tenant fills the pool and its queue.
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  d.get("/metrics");  // the noisy tenant is among the busiest from here on
  for (int i = 0; i < quiet_rounds; ++i) {
    long marker = std::stol(s.sql("SELECT nextval('fair_order')"));
    auto t0 = std::chrono::steady_clock::now();
    Response r = d.get(target(kQuiet, 1000000 + i));
    run.quiet_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    ++run.quiet_status[r.status];
    if (r.status == 200) run.ahead.push_back(json::parse(r.body).at("fair_seq").to_number<long>() - marker - 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stop = true;
  for (auto& t : noisy) t.join();
  d.get("/v1/entities/sleepy?ms=1");  // a global entity: a tenant of its own
  run.metrics = d.get("/metrics").body;
  return run;
}

std::string summary(const Run& r) {
  std::vector<double> ms = r.quiet_ms;
  std::sort(ms.begin(), ms.end());
  std::string out = "quiet: " + dump(r.quiet_status) + "ahead:";
  for (long a : r.ahead) out += " " + std::to_string(a);
  out += "; latency ms (query 50):";
  for (double m : ms) out += " " + std::to_string(static_cast<int>(m));
  return out + "; noisy: " + dump(r.noisy_status);
}

}  // namespace

TEST_CASE("fair queue: a noisy tenant's 80 concurrent cold readers do not queue ahead of a quiet tenant's cold read") {
  Run r = noisy_against_quiet(true, 10);
  INFO(summary(r));
  WARN("fair queue: " << summary(r));
  CHECK(r.quiet_status[200] == 10);
  REQUIRE(r.ahead.size() == 10);
  // Round robin: one noisy fill may be popped before it, and each connection
  // may have popped a noisy fill just before it arrived that had not yet
  // reached nextval(). Never the noisy tenant's queue (64 deep).
  CHECK(*std::max_element(r.ahead.begin(), r.ahead.end()) <= kPool + 1);
  // The noisy tenant's excess: 503 with Retry-After at once, never a 500.
  CHECK(r.noisy_status[503] > 0);
  CHECK(r.noisy_status[200] > 0);
  CHECK(r.noisy_status[200] + r.noisy_status[503] == [&] {
    int n = 0;
    for (auto [k, v] : r.noisy_status) n += v;
    return n;
  }());
  CHECK(r.noisy_503_without_retry == 0);
  // Per-tenant series for the busiest tenants, and global entities as one.
  CHECK(metric_sample(r.metrics, "sidecache_tenant_fills_total{tenant=\"" + kNoisy + "\"} ") > 0);
  CHECK(metric_sample(r.metrics, "sidecache_tenant_rejections_total{tenant=\"" + kNoisy + "\"} ") > 0);
  CHECK(metric_sample(r.metrics, "sidecache_tenant_fills_total{tenant=\"(other)\"} ") >= 0);
  CHECK(r.metrics.find("tenant=\"(global)\"") != std::string::npos);
}

TEST_CASE("without the fair queue the same load puts the quiet tenant behind the noisy tenant's queue (the test above measures the feature)") {
  Run r = noisy_against_quiet(false, 4);
  INFO(summary(r));
  WARN("one FIFO: " << summary(r));
  REQUIRE(!r.ahead.empty());
  CHECK(*std::min_element(r.ahead.begin(), r.ahead.end()) > kPool + 1);
}

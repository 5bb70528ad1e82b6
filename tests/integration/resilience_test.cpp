// Staying up: the circuit breaker, stale serving, early refresh, fill
// leases across processes, and faults injected under load.
#include <catch2/catch.hpp>

#include <boost/json.hpp>
#include <signal.h>
#include <atomic>
#include <mutex>
#include <sstream>
#include <thread>

#include "harness.hpp"

using namespace sidecache::it;
namespace json = boost::json;

namespace {
const std::string kOrg1 = "11111111-1111-1111-1111-111111111111";
const std::string kUidA = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa";
const std::string kUidB = "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb";

std::string target(const std::string& entity, const std::string& uid) {
  return "/v1/entities/" + entity + "?org_id=" + kOrg1 + "&user_id=" + uid;
}

std::string new_user(const std::string& name) {
  return Services::get().sql("INSERT INTO users (id, org_id, email, display_name) VALUES (gen_random_uuid(), '" + kOrg1 +
                             "', '" + name + "@test.example', '" + name + "') RETURNING id");
}

// /readyz's body; an answer that is not a readiness object (no answer at
// all, a cut one, an error body) comes back as {"answer": status, "body": text}
// so that a poll keeps polling and a failure message shows what was seen.
json::value readyz(const Daemon& d) {
  auto r = d.get("/readyz");
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  if (ec || !v.is_object() || !v.as_object().contains("redis"))
    return json::object{{"answer", r.status}, {"body", r.body}, {"redis", json::object{}}};
  return v;
}

// "closed", "open", "half_open", or what /readyz answered instead.
std::string breaker_state(const Daemon& d) {
  auto v = readyz(d);
  const auto* b = v.at("redis").as_object().if_contains("breaker");
  if (b && b->is_string()) return std::string(b->as_string());
  return "no breaker state: " + json::serialize(v);
}

long long redis_commands() {
  auto info = Services::get().redis_cli("INFO stats");
  auto pos = info.find("total_commands_processed:");
  return pos == std::string::npos ? -1 : std::stoll(info.substr(pos + 25));
}

struct ContinueRedis {
  ~ContinueRedis() {
    Services::get().signal_redis(SIGCONT);
    Services::get().start_redis();
  }
};
}  // namespace

TEST_CASE("a Redis that stops answering trips the breaker: no request waits, Redis sees only probes") {
  Daemon d;
  REQUIRE(d.get(target("user", kUidA)).status == 200);
  REQUIRE(breaker_state(d) == "closed");

  Services::get().signal_redis(SIGSTOP);
  ContinueRedis resume;
  auto stopped = std::chrono::steady_clock::now();
  // Every read still succeeds, from PostgreSQL.
  int reads_until_open = 0;
  while (breaker_state(d) != "open" && reads_until_open < 50) {
    REQUIRE(d.get(target("user", reads_until_open % 2 ? kUidA : kUidB)).status == 200);
    ++reads_until_open;
  }
  auto trip_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - stopped).count();
  WARN("breaker tripped " << trip_ms << " ms after SIGSTOP, after " << reads_until_open << " reads");
  CHECK(breaker_state(d) == "open");
  INFO(d.log());
  CHECK(d.log().find("circuit breaker closed -> open") != std::string::npos);

  // Every read is still answered, and without waiting for Redis.
  for (int i = 0; i < 200; ++i) REQUIRE(d.get(target("user", i % 2 ? kUidA : kUidB)).status == 200);
  Services::get().signal_redis(SIGCONT);
  // The breaker closes again by itself after open_timeout and a probe.
  CHECK(eventually([&] {
    d.get(target("user", kUidA));
    return breaker_state(d) == "closed";
  }));
  CHECK(d.log().find("-> closed") != std::string::npos);
}

TEST_CASE("Redis commands sent while the breaker is open are only probes") {
  Daemon d;
  REQUIRE(d.get(target("user", kUidA)).status == 200);
  Services::get().signal_redis(SIGSTOP);
  ContinueRedis resume;
  REQUIRE(eventually([&] {
    d.get(target("user", kUidB));
    return breaker_state(d) == "open";
  }));
  // Redis is stopped but keeps the bytes that reach its socket: after
  // SIGCONT it executes them, and INFO tells how many there were.
  Services::get().signal_redis(SIGCONT);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  long long base = redis_commands();
  Services::get().signal_redis(SIGSTOP);
  for (int i = 0; i < 300; ++i) REQUIRE(d.get(target("user", i % 2 ? kUidA : kUidB)).status == 200);
  Services::get().signal_redis(SIGCONT);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  long long during = redis_commands() - base - 1;  // minus INFO itself
  INFO("commands Redis got during 300 reads: " << during);
  WARN("breaker open: Redis received " << during << " commands during 300 reads");
  CHECK(during < 30);  // 300 reads would be 900+ commands without the breaker
  // The reads it refused are counted as such.
  CHECK(metric_sample(d.get("/metrics").body, R"(sidecache_redis_failures_total{kind="breaker_open"} )") > 200);
}

TEST_CASE("an invalidation refused by the open breaker is applied when Redis is back") {
  Services& s = Services::get();
  Daemon d;
  std::string uid = new_user("outage");
  auto t = target("user", uid);
  REQUIRE(d.get(t).status == 200);
  REQUIRE(d.get(t).header("cache-status") == "sidecache; hit");
  s.sql("UPDATE users SET display_name = 'outage2' WHERE id = '" + uid + "'");
  s.signal_redis(SIGSTOP);
  ContinueRedis resume;
  REQUIRE(eventually([&] {
    d.get(target("user", kUidB));
    return breaker_state(d) == "open";
  }));
  // The breaker refuses it: it never reaches Redis now.
  auto inv = http_request(d.port(), "DELETE", t);
  CHECK(inv.status == 503);
  CHECK(readyz(d).at("redis").at("pending_invalidations").as_int64() == 1);
  s.signal_redis(SIGCONT);
  REQUIRE(eventually([&] {
    d.get(target("user", kUidB));
    json::value v = readyz(d);
    const auto* pending = v.at("redis").as_object().if_contains("pending_invalidations");
    return breaker_state(d) == "closed" && pending && pending->as_int64() == 0;
  }));
  auto after = d.get(t);
  CHECK(json::parse(after.body).at("display_name").as_string() == "outage2");
}

// Collapsing with Redis down: the leader's answer stays joinable 100 ms after
// it is read (nowhere to store it), so a request that reaches the process
// later than that (a slow start under a sanitizer) fills again: at most two
// queries per key, not one per request.
TEST_CASE("Redis stopped: 500 concurrent requests over 50 keys cost at most two queries per key, each answered 200 or 503") {
  Services& s = Services::get();
  Daemon::Options o;
  o.pool_size = 8;
  Daemon d(o);
  std::vector<std::string> users;
  for (int i = 0; i < 50; ++i) users.push_back(new_user("wave" + std::to_string(i)));
  s.stop_redis();
  struct Restart { ~Restart() { Services::get().start_redis(); } } restart;
  const std::string marker = "AS slow";
  long long before = s.query_count(marker);
  constexpr int kClients = 500;
  auto answers = all_at_once(kClients, [&](int i) { return d.get(target("slow_user", users[i % 50])); });
  long long queries = s.query_count(marker) - before;
  std::map<int, int> statuses;
  for (const auto& a : answers) ++statuses[a.status];
  INFO("queries: " << queries << "; statuses: " << dump(statuses));
  WARN("Redis down, 500 requests over 50 keys: " << queries << " queries; statuses " << dump(statuses));
  CHECK(queries <= 2 * 50);
  CHECK(statuses[200] + statuses[503] == kClients);
  CHECK(statuses[200] > 0);
}

TEST_CASE("max_concurrent_fills caps one entity's fills with a fast 503") {
  Daemon d;
  std::vector<std::string> users;
  for (int i = 0; i < 6; ++i) users.push_back(new_user("cap" + std::to_string(i)));
  std::vector<Response> answers(6);
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) threads.emplace_back([&, i] { answers[i] = d.get(target("capped_user", users[i])); });
  for (auto& t : threads) t.join();
  int ok = 0, busy = 0;
  for (const auto& a : answers) {
    if (a.status == 200) ++ok;
    if (a.status == 503 && a.header("retry-after") == "1") ++busy;
  }
  INFO("ok " << ok << ", busy " << busy);
  CHECK(ok >= 2);
  CHECK(busy >= 1);
  CHECK(ok + busy == 6);
}

TEST_CASE("stale_if_error: an expired value is served, marked stale, while PostgreSQL is down") {
  Services& s = Services::get();
  Daemon d;
  std::string uid = new_user("stale");
  auto t = target("stale_user", uid);
  REQUIRE(d.get(t).status == 200);
  // Let the 1 s TTL pass.
  REQUIRE(eventually([&] { return d.get(t).header("cache-status") != "sidecache; hit"; }, 60));
  REQUIRE(d.get(t).header("cache-status") == "sidecache; hit");  // refilled
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));  // Age > TTL even in whole seconds
  s.stop_pg();
  struct Restart { ~Restart() { Services::get().start_pg(); } } restart;
  auto stale = d.get(t);
  INFO(stale.body);
  CHECK(stale.status == 200);
  CHECK(stale.header("cache-status") == "sidecache; hit; fwd=stale; detail=error");
  int stale_served = 1;
  for (int i = 0; i < 20; ++i)
    stale_served += d.get(t).header("cache-status") == "sidecache; hit; fwd=stale; detail=error";
  WARN("PostgreSQL down: " << stale_served << " of 21 reads answered stale, Age " << stale.header("age") << " s (TTL 1 s)");
  CHECK(stale_served == 21);
  CHECK(std::stoi(stale.header("age")) >= 2);  // beyond the 1 s TTL
  CHECK(json::parse(stale.body).at("display_name").as_string() == "stale");
  // A key never cached has nothing to fall back on.
  auto cold = d.get(target("stale_user", kUidB));
  CHECK(cold.status == 503);
  s.start_pg();
  auto fresh = Response{};
  CHECK(eventually([&] {
    fresh = d.get(t);
    return fresh.header("cache-status") == "sidecache; fwd=miss; stored";
  }));
  CHECK(d.get(target("stale_user", kUidB)).status == 200);
}

TEST_CASE("stale_while_revalidate: the old value is answered at once while one refresh runs") {
  Services& s = Services::get();
  Daemon d;
  std::string uid = new_user("swr");
  auto t = target("swr_user", uid);
  REQUIRE(d.get(t).status == 200);
  s.sql("UPDATE users SET display_name = 'swr2' WHERE id = '" + uid + "'");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto stale = d.get(t);
  CHECK(stale.header("cache-status") == "sidecache; hit; fwd=stale; detail=revalidating");
  CHECK(json::parse(stale.body).at("display_name").as_string() == "swr");
  Response fresh;
  CHECK(eventually([&] {
    fresh = d.get(t);
    return fresh.header("cache-status") == "sidecache; hit" &&
           json::parse(fresh.body).at("display_name").as_string() == "swr2";
  }));
}

TEST_CASE("early refresh: a hot key is refreshed before it expires, and its expiry causes no misses") {
  Services& s = Services::get();
  Daemon d;
  std::string uid = new_user("xfetch");
  auto t = target("xfetch_user", uid);
  const std::string marker = "AS xfetch";
  long long before = s.query_count(marker);
  REQUIRE(d.get(t).header("cache-status") == "sidecache; fwd=miss; stored");
  int misses = 0, requests = 0;
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(3500);  // three and a half TTLs
  while (std::chrono::steady_clock::now() < end) {
    auto r = d.get(t);
    ++requests;
    if (r.header("cache-status") != "sidecache; hit") ++misses;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  long long fills = s.query_count(marker) - before;
  INFO("requests " << requests << ", misses " << misses << ", fills " << fills);
  WARN("XFetch: " << requests << " requests over 3.5 TTLs, " << misses << " misses, " << fills << " fills");
  CHECK(misses == 0);
  CHECK(fills >= 3);  // refreshed (at least) once per TTL, in the background
}

TEST_CASE("four processes, 1000 concurrent requests for one cold key: one query") {
  Services& s = Services::get();
  // What is measured is the lease between processes, not Redis timeouts:
  // 1000 client threads on two cores delay a Redis reply past the tests'
  // 50 ms now and then, and a read that times out reads PostgreSQL (as it
  // should), which made a second query in about 1 run of 10 under load.
  Daemon::Options same;
  same.redis_timeout = "1s";
  Daemon first(same);
  same.key_prefix = first.prefix();
  Daemon second(same), third(same), fourth(same);
  std::vector<const Daemon*> fleet{&first, &second, &third, &fourth};
  std::string uid = new_user("fleet");
  const std::string marker = "AS leased";
  long long before = s.query_count(marker);
  constexpr int kClients = 1000;
  auto answers = all_at_once(kClients, [&](int i) { return fleet[i % 4]->get(target("lease_user", uid)); });
  long long queries = s.query_count(marker) - before;
  int right = 0;
  for (const auto& a : answers)
    if (a.status == 200 && json::parse(a.body).at("email").as_string() == "fleet@test.example") ++right;
  INFO("queries " << queries << ", right answers " << right);
  // On a failure: what each process said of Redis and of its fills.
  std::string said;
  for (const Daemon* d : fleet) said += "-- a process:\n" + d->said();
  INFO(said);
  WARN("4 processes, " << kClients << " requests, one cold key: " << queries << " query, " << right << " right answers");
  CHECK(queries == 1);
  CHECK(right == kClients);
}

TEST_CASE("faults under load: kill -9 and restart of Redis, SIGSTOP/SIGCONT, pool connections terminated") {
  Services& s = Services::get();
  Daemon d;
  std::vector<std::string> targets;
  for (const auto* u : {&kUidA, &kUidB}) targets.push_back(target("user", *u));
  targets.push_back("/v1/entities/feature_flags");
  targets.push_back("/v1/entities/users_page?org_id=" + kOrg1 + "&page=1&page_size=5");

  SECTION("kill -9 of Redis, then restart") {
    Load load(d, targets, 4);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    s.signal_redis(SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    s.start_redis();
    std::string log = d.log();
    log = log.substr(log.size() > 4000 ? log.size() - 4000 : 0);
    INFO(log);
    std::string breaker, status;
    bool recovered = eventually([&] {
      breaker = breaker_state(d);
      status = d.get(targets[0]).header("cache-status");
      return breaker == "closed" && status == "sidecache; hit";
    });
    INFO("last breaker state " << breaker << ", last Cache-Status " << status);
    CHECK(recovered);
    auto counts = load.stop();
    INFO(dump(counts));
    CHECK(counts.size() == 1);
    CHECK(counts[200] > 0);
  }
  SECTION("SIGSTOP and SIGCONT of Redis") {
    Load load(d, targets, 4);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    s.signal_redis(SIGSTOP);
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    s.signal_redis(SIGCONT);
    CHECK(eventually([&] { return breaker_state(d) == "closed"; }));
    auto counts = load.stop();
    INFO(dump(counts));
    CHECK(counts.size() == 1);
    CHECK(counts[200] > 0);
  }
  SECTION("pg_terminate_backend on the pool's connections") {
    // no-cache: every request queries PostgreSQL.
    Load load(d, targets, 4, {"Cache-Control: no-cache"});
    for (int i = 0; i < 5; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
      s.sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'sidecache'");
    }
    auto counts = load.stop();
    INFO(dump(counts));
    CHECK(counts.size() == 1);
    CHECK(counts[200] > 0);
  }
  // No request, the polls included, ever reached the handler's last resort.
  CHECK(d.log().find("http: handler failed") == std::string::npos);
}

TEST_CASE("a 16 MB result is answered but not stored (max_value_bytes), so Redis stays fast and the breaker closed") {
  Daemon::Options o;
  o.extra_entities = {{"big.yaml", "name: big\nscope: global\nsql: SELECT repeat('x', 16000000) AS blob\n"}};
  o.redis_extra = ", breaker: { failures: 2 }";
  Daemon d(o);
  for (int i = 0; i < 4; ++i) {
    auto r = d.get("/v1/entities/big");
    INFO(r.header("cache-status"));
    CHECK(r.status == 200);
    CHECK(r.body.size() > 16000000);
    // Truthful: not stored, and why.
    CHECK(r.header("cache-status") == "sidecache; fwd=miss; detail=too-large");
  }
  auto ready = json::parse(d.get("/readyz").body);
  CHECK(ready.at("redis").at("breaker").as_string() == "closed");
  auto m = d.get("/metrics").body;
  CHECK(metric_sample(m, R"(sidecache_values_too_large_total{entity="big"} )") == 4);
  const std::string warned = "a value of entity 'big' is";
  auto first = d.log().find(warned);
  CHECK(first != std::string::npos);
  CHECK(d.log().find(warned, first + 1) == std::string::npos);  // once per entity
}

TEST_CASE("a large value that is slow to read from Redis is not a Redis failure: its late reply keeps the breaker "
          "closed, while other entities keep their hits") {
  const char* big = "name: big_stored\nscope: global\nmax_value_bytes: 64MiB\nsql: SELECT repeat('x', 32000000) AS blob\n";
  Daemon::Options w;
  w.extra_entities = {{"big_stored.yaml", big}};
  w.redis_timeout = "5s";  // stores it
  Daemon writer(w);
  auto stored = writer.get("/v1/entities/big_stored");
  REQUIRE(stored.status == 200);
  REQUIRE(writer.get("/v1/entities/big_stored").header("cache-status") == "sidecache; hit");

  Daemon::Options r;
  r.key_prefix = writer.prefix();
  r.extra_entities = w.extra_entities;
  r.redis_timeout = "10ms";  // 32 MB take longer than this to read
  r.redis_extra = ", breaker: { failures: 2 }";
  // Each read falls back to PostgreSQL for 32 MB: under AddressSanitizer,
  // beside another test, that fill has taken over the default 2 s.
  r.statement_timeout = "10s";
  Daemon reader(r);
  const std::string flags = "/v1/entities/feature_flags";
  REQUIRE(reader.get(flags).status == 200);
  for (int i = 0; i < 3; ++i) {
    auto got = reader.get("/v1/entities/big_stored");
    CHECK(got.status == 200);
    CHECK(got.body.size() > 32000000);
  }
  auto m = reader.get("/metrics").body;
  INFO(m.substr(0, 200));
  // The scenario happened: reads of the value timed out ...
  REQUIRE(metric_sample(m, R"(sidecache_redis_failures_total{kind="timeout"} )") >= 2);
  // ... and yet the breaker, which opens after 2 failures, is closed: each
  // late reply arrived (bytes kept moving), so none was a failure.
  CHECK(eventually([&] { return json::parse(reader.get("/readyz").body).at("redis").at("breaker").as_string() == "closed"; }));
  CHECK(reader.log().find("circuit breaker closed -> open") == std::string::npos);
  CHECK(eventually([&] { return reader.get(flags).header("cache-status") == "sidecache; hit"; }));
}

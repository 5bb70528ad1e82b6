// Redis and PostgreSQL going away under a running daemon.
#include <catch2/catch.hpp>

#include <boost/json.hpp>
#include <thread>

#include "harness.hpp"

using namespace sidecache::it;

namespace {
const std::string kOrg1 = "11111111-1111-1111-1111-111111111111";
const std::string kUidA = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa";
const std::string kUidB = "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb";
std::string user(const std::string& uid) { return "/v1/entities/user?org_id=" + kOrg1 + "&user_id=" + uid; }

// Restarts a service when the test ends, even when it fails.
struct Restore {
  std::function<void()> fn;
  ~Restore() { fn(); }
};

template <class F>
Response poll_until(F&& get, const std::function<bool(const Response&)>& done, int tries = 100) {
  Response r;
  for (int i = 0; i < tries; ++i) {
    r = get();
    if (done(r)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return r;
}
}  // namespace

TEST_CASE("Redis stopped mid-test: reads are served from PostgreSQL, and the cache returns with Redis") {
  Services& s = Services::get();
  Daemon d;
  REQUIRE(d.get(user(kUidA)).status == 200);
  REQUIRE(d.get(user(kUidA)).header("cache-status") == "sidecache; hit");

  s.stop_redis();
  Restore restore{[&] { s.start_redis(); }};
  for (int i = 0; i < 20; ++i) {
    auto r = d.get(user(i % 2 ? kUidA : kUidB));
    INFO(d.log());
    REQUIRE(r.status == 200);
    // Not stored: Redis is down. Back-to-back requests for one key share a
    // fill for 100 ms ("collapsed").
    auto cs = r.header("cache-status");
    CHECK((cs == "sidecache; fwd=miss" || cs == "sidecache; fwd=miss; collapsed"));
  }
  auto ready = d.get("/readyz");
  CHECK(ready.status == 200);  // a Redis outage does not make sidecache unready
  CHECK(boost::json::parse(ready.body).at("redis").at("state").as_string() == "down");

  s.start_redis();
  // The connection comes back by itself; values are stored and hit again.
  auto back = poll_until([&] { return d.get(user(kUidB)); },
                         [](const Response& r) { return r.header("cache-status") == "sidecache; fwd=miss; stored"; });
  CHECK(back.header("cache-status") == "sidecache; fwd=miss; stored");
  CHECK(d.get(user(kUidB)).header("cache-status") == "sidecache; hit");
  CHECK(d.log().find("redis[") != std::string::npos);  // the outage was logged
}

TEST_CASE("PostgreSQL stopped: cached values are still served, uncached ones get a 503, and it recovers") {
  Services& s = Services::get();
  Daemon d;
  REQUIRE(d.get(user(kUidA)).status == 200);

  s.stop_pg();
  Restore restore{[&] { s.start_pg(); }};
  auto cached = d.get(user(kUidA));
  CHECK(cached.status == 200);
  CHECK(cached.header("cache-status") == "sidecache; hit");

  for (int i = 0; i < 3; ++i) {
    auto cold = d.get(user(kUidB));
    INFO(cold.body);
    CHECK(cold.status == 503);
    CHECK(cold.header("retry-after") == "1");
    CHECK(boost::json::parse(cold.body).at("error").as_string() == "unavailable");
  }
  auto ready = d.get("/readyz");
  CHECK(ready.status == 503);
  CHECK(boost::json::parse(ready.body).at("postgres").at("state").as_string() == "down");

  s.start_pg();
  auto back = poll_until([&] { return d.get(user(kUidB)); }, [](const Response& r) { return r.status == 200; });
  CHECK(back.status == 200);
  CHECK(d.get("/readyz").status == 200);
  // Every pool connection of the stopped server is used again (concurrent
  // cold reads): each reconnects quietly, without libpqxx's cryptic lines.
  auto again = all_at_once(16, [&](int i) { return d.get("/v1/entities/type_zoo?id=" + std::to_string(100 + i)); });
  for (const auto& r : again) CHECK(r.status < 500);
  INFO(d.log());
  CHECK(d.log().find("Could not obtain client encoding") == std::string::npos);
  CHECK(d.log().find("query failed: ") == std::string::npos);
  // Said once, with what happens next.
  const std::string closed = "the server closed this process's connections";
  auto first = d.log().find(closed);
  CHECK(first != std::string::npos);
  CHECK(d.log().find(closed, first + 1) == std::string::npos);
}

TEST_CASE("a query past statement_timeout is a 504 and is not cached") {
  Daemon::Options o;
  o.statement_timeout = "200ms";
  Daemon d(o);
  auto r = d.get("/v1/entities/sleepy?ms=1000");
  INFO(r.body);
  CHECK(r.status == 504);
  CHECK(boost::json::parse(r.body).at("error").as_string() == "timeout");
  auto quick = d.get("/v1/entities/sleepy?ms=1");
  CHECK(quick.status == 200);
  CHECK(d.get("/v1/entities/sleepy?ms=1000").status == 504);  // the failure was not stored
}

TEST_CASE("a full fill queue answers 503 at once") {
  Daemon::Options o;
  o.pool_size = 1;
  o.queue_limit = 0;
  Daemon d(o);
  std::thread busy([&] { d.get("/v1/entities/sleepy?ms=700"); });
  Response r;
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    r = d.get("/v1/entities/sleepy?ms=" + std::to_string(2 + i));
    if (r.status == 503) break;
  }
  busy.join();
  CHECK(r.status == 503);
  CHECK(r.header("retry-after") == "1");
  CHECK(r.body.find("queue is full") != std::string::npos);
}

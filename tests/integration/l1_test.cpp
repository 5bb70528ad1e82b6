// L1, the in-process near cache, against real Redis and PostgreSQL: what it
// serves, its byte bound, invalidation across processes over Redis pub/sub,
// and what happens when that subscription drops.
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include "harness.hpp"

using namespace sidecache::it;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {
const std::string kOrg1 = "11111111-1111-1111-1111-111111111111";
const std::string kOrg2 = "22222222-2222-2222-2222-222222222222";
const std::string kL1Hit = "sidecache; hit; detail=l1";

std::string user(const std::string& org, const std::string& uid) {
  return "/v1/entities/user?org_id=" + org + "&user_id=" + uid;
}
std::string name_of(const Response& r) {
  return std::string(json::parse(r.body).as_object().at("display_name").as_string());
}
std::string new_user(const std::string& org, const std::string& name) {
  return Services::get().sql("INSERT INTO users (id, org_id, email, display_name) VALUES (gen_random_uuid(), '" + org +
                             "', 'l1@test.example', '" + name + "') RETURNING id");
}
void rename(const std::string& uid, const std::string& name) {
  // Straight to PostgreSQL: the user entity's trigger is not installed in
  // these tests, so only the API invalidates.
  Services::get().sql("UPDATE users SET display_name = '" + name + "' WHERE id = '" + uid + "'");
}
Daemon::Options with_l1(const std::string& l1 = "{ max_bytes: 8MiB, ttl: 60s }") {
  Daemon::Options o;
  o.extra_main = "l1: " + l1 + "\n";
  return o;
}
// Polls `d` for `target` until it answers `name`; returns how long it took.
std::optional<Clock::duration> until_name(const Daemon& d, const std::string& target, const std::string& name) {
  auto start = Clock::now();
  for (int i = 0; i < 10000; ++i) {
    auto r = d.get(target);
    if (r.status == 200 && name_of(r) == name) return Clock::now() - start;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return std::nullopt;
}
std::string l1_state(const Daemon& d) {
  auto r = d.get("/readyz");
  auto o = json::parse(r.body).as_object();
  if (!o.contains("l1")) return "absent";
  return std::string(o.at("l1").as_object().at("state").as_string());
}
// Two processes of one service (one key space), both with L1 on.
struct TwoPods {
  static Daemon::Options same_keys(const Daemon& first) {
    auto o = with_l1();
    o.key_prefix = first.prefix();
    return o;
  }
  Daemon a{with_l1()};
  Daemon b{same_keys(a)};
  TwoPods() { REQUIRE(eventually([&] { return l1_state(a) == "on" && l1_state(b) == "on"; })); }
};
}  // namespace

TEST_CASE("l1: the second read is served from L1, without Redis, until an invalidation") {
  Daemon d(with_l1());
  REQUIRE(eventually([&] { return l1_state(d) == "on"; }));
  std::string uid = new_user(kOrg1, "first");
  auto t = user(kOrg1, uid);
  CHECK(d.get(t).header("cache-status") == "sidecache; fwd=miss; stored");
  auto r = d.get(t);
  CHECK(r.header("cache-status") == kL1Hit);
  CHECK(name_of(r) == "first");
  CHECK(!r.header("age").empty());
  // Redis loses the value: L1 still answers (it is in front of Redis)...
  std::string key = Services::get().redis_cli("--scan --pattern " + d.prefix() + "t:*" + uid + "*");
  REQUIRE(!key.empty());
  REQUIRE(Services::get().redis_cli("DEL " + key) == "1");
  CHECK(d.get(t).header("cache-status") == kL1Hit);
  // ...and no-cache skips it.
  CHECK(d.get(t, {"Cache-Control: no-cache"}).header("cache-status") == "sidecache; fwd=request; stored");
  // A write with its invalidation: the next read is fresh, in this process at once.
  rename(uid, "second");
  REQUIRE(http_request(d.port(), "DELETE", t).status == 200);
  r = d.get(t);
  CHECK(r.header("cache-status") == "sidecache; fwd=miss; stored");
  CHECK(name_of(r) == "second");
  CHECK(d.get(t).header("cache-status") == kL1Hit);
  // Negative answers are kept too.
  auto missing = user(kOrg1, "00000000-0000-0000-0000-00000000abcd");
  CHECK(d.get(missing).status == 404);
  auto again = d.get(missing);
  CHECK(again.status == 404);
  CHECK(again.header("cache-status") == kL1Hit);
}

TEST_CASE("l1: an invalidation through one process evicts every process's copy, in its scope only", "[topology]") {
  TwoPods pods;
  const Daemon &a = pods.a, &b = pods.b;
  std::string u1 = new_user(kOrg1, "one"), u2 = new_user(kOrg2, "two");
  auto t1 = user(kOrg1, u1), t2 = user(kOrg2, u2);
  for (const auto* t : {&t1, &t2}) {
    a.get(*t);
    b.get(*t);
    INFO(b.log());
    REQUIRE(b.get(*t).header("cache-status") == kL1Hit);
  }
  std::vector<std::string> lags;

  SECTION("one key (DELETE)") {
    rename(u1, "one-b");
    REQUIRE(http_request(a.port(), "DELETE", t1).status == 200);
    auto lag = until_name(b, t1, "one-b");
    REQUIRE(lag);
    lags.push_back(std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(*lag).count()));
  }
  SECTION("one tenant") {
    rename(u1, "one-c");
    REQUIRE(http_request(a.port(), "POST", "/v1/invalidate", {"Content-Type: application/json"},
                         R"({"tenant":")" + kOrg1 + R"("})")
                .status == 200);
    auto lag = until_name(b, t1, "one-c");
    REQUIRE(lag);
    lags.push_back(std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(*lag).count()));
  }
  SECTION("one entity, every tenant") {
    rename(u1, "one-d");
    rename(u2, "two-d");
    REQUIRE(http_request(a.port(), "POST", "/v1/invalidate", {"Content-Type: application/json"}, R"({"entity":"user"})")
                .status == 200);
    REQUIRE(until_name(b, t1, "one-d"));
    REQUIRE(until_name(b, t2, "two-d"));
  }
  // The copy in the other tenant was left alone by the narrower scopes.
  if (lags.size() == 1) CHECK(b.get(t2).header("cache-status") == kL1Hit);
  // With l1 ttl 60s, only the message can have evicted it.
  if (!lags.empty()) WARN("the other process served the new row " << lags[0] << " us after the invalidation answered");
}

TEST_CASE("l1: bounded by l1.max_bytes, a hot key stays while a scan passes through") {
  Daemon d(with_l1("{ max_bytes: 256KiB, ttl: 60s }"));
  REQUIRE(eventually([&] { return l1_state(d) == "on"; }));
  std::string hot_uid = new_user(kOrg1, "hot");
  auto hot = user(kOrg1, hot_uid);
  for (int i = 0; i < 4; ++i) d.get(hot);
  REQUIRE(d.get(hot).header("cache-status") == kL1Hit);
  // 3,000 distinct keys read once (negative answers, about 700 bytes each
  // in L1 with their keys): several times the bound.
  for (int i = 0; i < 3000; ++i) {
    char uid[40];
    std::snprintf(uid, sizeof uid, "00000000-0000-0000-0000-%012d", i);
    REQUIRE(d.get(user(kOrg2, uid)).status == 404);
    if (i % 20 == 0) d.get(hot);
  }
  auto m = d.get("/metrics").body;
  INFO(m);
  double bytes = metric_sample(m, "sidecache_l1_bytes ");
  CHECK(bytes > 0);
  CHECK(bytes <= 256 * 1024);
  CHECK(metric_sample(m, "sidecache_l1_max_bytes ") == 256 * 1024);
  CHECK(metric_sample(m, R"(sidecache_l1_dropped_total{reason="evicted"} )") > 1000);
  CHECK(metric_sample(m, R"(sidecache_l1_lookups_total{result="hit"} )") > 100);
  CHECK(d.get(hot).header("cache-status") == kL1Hit);
}

TEST_CASE("l1: a dropped subscription flushes L1 and keeps it off until it is back") {
  TwoPods pods;
  const Daemon &a = pods.a, &b = pods.b;
  std::string uid = new_user(kOrg1, "before");
  auto t = user(kOrg1, uid);
  b.get(t);
  REQUIRE(b.get(t).header("cache-status") == kL1Hit);
  // Redis drops every subscriber connection (b's and a's).
  Services::get().redis_cli("CLIENT KILL TYPE pubsub");
  REQUIRE(eventually([&] { return b.log().find("l1: flushed and off") != std::string::npos; }));
  // Whether b is still off or subscribed again, its copy is gone: an
  // invalidation it could have missed cannot leave it serving the old row.
  rename(uid, "after");
  REQUIRE(http_request(a.port(), "DELETE", t).status == 200);
  auto r = b.get(t);
  CHECK(r.header("cache-status") != kL1Hit);
  CHECK(name_of(r) == "after");
  // It comes back by itself, and serves again.
  REQUIRE(eventually([&] { return l1_state(b) == "on"; }));
  CHECK(b.log().find("subscribed to " + a.prefix() + "l1 again") != std::string::npos);
  b.get(t);
  CHECK(b.get(t).header("cache-status") == kL1Hit);

  SECTION("Redis down: L1 is off, reads go to PostgreSQL, and it comes back with Redis") {
    Services::get().stop_redis();
    REQUIRE(eventually([&] { return l1_state(b) == "off"; }));
    rename(uid, "during");
    auto during = b.get(t);
    CHECK(during.status == 200);
    CHECK(during.header("cache-status") != kL1Hit);
    CHECK(name_of(during) == "during");
    Services::get().start_redis();
    REQUIRE(eventually([&] { return l1_state(b) == "on"; }, 200));
  }
}

TEST_CASE("a Redis URL with user, password and db: both connection kinds authenticate and select") {
  Services& s = Services::get();
  REQUIRE(s.redis_cli("ACL SETUSER sc_acl_test on >acl-pass-0123 ~* &* +@all") == "OK");
  std::string base = "127.0.0.1:" + std::to_string(s.redis_port());
  auto opt = with_l1();
  opt.redis_url = "redis://sc_acl_test:acl-pass-0123@" + base + "/3";
  Daemon d(opt);
  // The subscriber authenticated: L1 turns on.
  REQUIRE(eventually([&] { return l1_state(d) == "on"; }));
  std::string uid = new_user(kOrg1, "acl");
  auto t = user(kOrg1, uid);
  CHECK(d.get(t).header("cache-status") == "sidecache; fwd=miss; stored");
  // The command connections authenticated and selected db 3.
  std::string key = s.redis_cli("-n 3 --scan --pattern " + d.prefix() + "t:*" + uid + "*");
  CHECK(!key.empty());
  CHECK(s.redis_cli("-n 0 --scan --pattern " + d.prefix() + "t:*" + uid + "*").empty());
  CHECK(d.log().find("acl-pass-0123") == std::string::npos);  // the password never reaches a log line

  auto bad = with_l1();
  bad.redis_url = "redis://sc_acl_test:wrong-password@" + base + "/3";
  Daemon w(bad);
  // Redis refuses: reads still work (from PostgreSQL), and the failure is logged.
  CHECK(w.get(t).status == 200);
  CHECK(eventually([&] { return w.log().find("connection setup (AUTH or SELECT) failed") != std::string::npos; }));
  s.redis_cli("ACL DELUSER sc_acl_test");
}

TEST_CASE("l1: a key invalidated while Redis was down is served from L1 again soon after Redis is back") {
  Services& s = Services::get();
  Daemon d(with_l1());
  REQUIRE(eventually([&] { return l1_state(d) == "on"; }));
  std::string uid = new_user(kOrg1, "outage");
  auto t = user(kOrg1, uid);
  REQUIRE(d.get(t).header("cache-status") == "sidecache; fwd=miss; stored");
  REQUIRE(d.get(t).header("cache-status") == kL1Hit);
  s.stop_redis();
  bool restarted = false;
  struct Restart {
    Services& s;
    bool& done;
    ~Restart() { if (!done) s.start_redis(); }
  } restart{s, restarted};
  rename(uid, "outage-2");
  CHECK(http_request(d.port(), "DELETE", t).status == 503);  // queued
  s.start_redis();
  restarted = true;
  // The queued invalidation reaches Redis, L1 comes back on; then the key
  // is read (fresh) and its copy is served from L1 again, within seconds.
  bool served_from_l1 = false;
  for (int i = 0; i < 100 && !served_from_l1; ++i) {
    auto r = d.get(t);
    if (r.status == 200 && name_of(r) == "outage-2" && r.header("cache-status") == kL1Hit) served_from_l1 = true;
    else std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  INFO(d.log());
  CHECK(d.log().find("invalidations that waited for Redis are applied") != std::string::npos);
  CHECK(served_from_l1);
}

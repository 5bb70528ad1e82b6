// The read path against real Redis and PostgreSQL, through real HTTP.
#include <catch2/catch.hpp>

#include <boost/json.hpp>
#include <thread>

#include "harness.hpp"

using namespace sidecache::it;
namespace json = boost::json;

namespace {
const std::string kOrg1 = "11111111-1111-1111-1111-111111111111";
const std::string kOrg2 = "22222222-2222-2222-2222-222222222222";
const std::string kUidA = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa";

std::string user_target(const std::string& entity, const std::string& org, const std::string& uid) {
  return "/v1/entities/" + entity + "?org_id=" + org + "&user_id=" + uid;
}

// A fresh user in org 1, so tests that write do not disturb each other.
std::string new_user(Services& s, const std::string& name) {
  return s.sql("INSERT INTO users (id, org_id, email, display_name) VALUES (gen_random_uuid(), '" + kOrg1 + "', '" +
               name + "@test.example', '" + name + "') RETURNING id");
}

json::value parse(const std::string& body) { return json::parse(body); }
}  // namespace

TEST_CASE("miss, then hit, with Cache-Status and Age", "[topology]") {
  Daemon d;
  auto t = user_target("user", kOrg1, kUidA);
  auto first = d.get(t);
  INFO(d.log());
  REQUIRE(first.status == 200);
  CHECK(first.header("content-type") == "application/json");
  CHECK(first.header("cache-status") == "sidecache; fwd=miss; stored");
  CHECK(first.header("age").empty());
  auto obj = parse(first.body).as_object();
  CHECK(obj.at("email").as_string() == "ada@acme.example");
  CHECK(obj.at("id").as_string() == kUidA);

  auto second = d.get(t);
  REQUIRE(second.status == 200);
  CHECK(second.header("cache-status") == "sidecache; hit");
  CHECK_FALSE(second.header("age").empty());
  CHECK(second.body == first.body);

  // Parameter spelling does not split the cache: upper-case UUIDs, other order.
  auto upper = d.get("/v1/entities/user?user_id=AAAAAAAA-AAAA-AAAA-AAAA-AAAAAAAAAAAA&org_id=" + kOrg1);
  CHECK(upper.header("cache-status") == "sidecache; hit");
}

TEST_CASE("every PostgreSQL type is encoded by PostgreSQL", "[topology]") {
  Daemon d;
  auto r = d.get("/v1/entities/type_zoo?id=1");
  INFO(r.body);
  REQUIRE(r.status == 200);
  auto o = parse(r.body).as_object();
  CHECK(o.at("n_int").as_int64() == 9007199254740993LL);
  CHECK(r.body.find("12345678901234567890.5") != std::string::npos);  // numeric kept exact
  CHECK(o.at("flag").as_bool());
  CHECK(o.at("nothing").is_null());
  CHECK(o.at("at").as_string() == "2024-02-29T12:34:56.789+00:00");
  CHECK(o.at("doc").as_object().at("nested").as_object().at("a").as_array().size() == 3);
  CHECK(o.at("raw").as_array()[1].as_string() == "two");
  CHECK(o.at("uid").as_string() == kUidA);
  CHECK(o.at("label").as_string() == "quote \" backslash \\ newline \n tab \t emoji 🚀 cjk 漢字 nul-free");
  CHECK(o.at("tags").as_array()[1].as_string() == "y:z");
  // The hit returns the very same bytes.
  CHECK(d.get("/v1/entities/type_zoo?id=1").body == r.body);
}

TEST_CASE("rows entities answer arrays, an empty array when nothing matches", "[topology]") {
  Daemon d;
  auto flags = d.get("/v1/entities/feature_flags");
  REQUIRE(flags.status == 200);
  CHECK(parse(flags.body).as_array().size() >= 3);
  auto page = d.get("/v1/entities/users_page?org_id=" + kOrg2 + "&page=1&page_size=1");
  REQUIRE(page.status == 200);
  CHECK(parse(page.body).as_array().size() == 1);
  auto empty = d.get("/v1/entities/users_page?org_id=" + kOrg2 + "&page=99&page_size=10");
  REQUIRE(empty.status == 200);
  CHECK(empty.body == "[]");
  CHECK(d.get("/v1/entities/users_page?org_id=" + kOrg2 + "&page=99&page_size=10").header("cache-status") ==
        "sidecache; hit");
}

TEST_CASE("Cache-Control: no-cache bypasses the read and refreshes the stored value", "[topology]") {
  Services& s = Services::get();
  Daemon d;
  std::string uid = new_user(s, "bypass");
  auto t = user_target("user", kOrg1, uid);
  REQUIRE(d.get(t).status == 200);
  s.sql("UPDATE users SET display_name = 'renamed' WHERE id = '" + uid + "'");
  auto stale = d.get(t);
  CHECK(stale.header("cache-status") == "sidecache; hit");
  CHECK(parse(stale.body).as_object().at("display_name").as_string() == "bypass");

  auto fresh = d.get(t, {"Cache-Control: no-cache"});
  CHECK(fresh.header("cache-status").rfind("sidecache; fwd=request", 0) == 0);
  CHECK(parse(fresh.body).as_object().at("display_name").as_string() == "renamed");
  auto after = d.get(t);
  CHECK(after.header("cache-status") == "sidecache; hit");
  CHECK(parse(after.body).as_object().at("display_name").as_string() == "renamed");
}

TEST_CASE("a missing row is a 404 that is cached for negative_ttl", "[topology]") {
  Services& s = Services::get();
  Daemon d;
  std::string uid = s.sql("SELECT gen_random_uuid()");
  auto t = user_target("short_user", kOrg1, uid);
  auto miss = d.get(t);
  REQUIRE(miss.status == 404);
  CHECK(parse(miss.body).as_object().at("error").as_string() == "not_found");
  CHECK(miss.header("cache-status") == "sidecache; fwd=miss; stored");
  long long before = s.query_count("SELECT id, email, display_name FROM users WHERE");

  s.sql("INSERT INTO users (id, org_id, email, display_name) VALUES ('" + uid + "', '" + kOrg1 +
        "', 'late@test.example', 'late')");
  auto cached = d.get(t);
  CHECK(cached.status == 404);
  CHECK(cached.header("cache-status") == "sidecache; hit");
  CHECK(s.query_count("SELECT id, email, display_name FROM users WHERE") == before);

  // negative_ttl is 1 s for short_user: the row appears once it passes.
  Response later;
  for (int i = 0; i < 60; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    later = d.get(t);
    if (later.status == 200) break;
  }
  CHECK(later.status == 200);
  CHECK(later.header("cache-status") == "sidecache; fwd=miss; stored");
}

TEST_CASE("the TTL is honoured: a value expires and is read again") {
  Services& s = Services::get();
  Daemon d;
  std::string uid = new_user(s, "ttl");
  auto t = user_target("short_user", kOrg1, uid);
  REQUIRE(d.get(t).header("cache-status") == "sidecache; fwd=miss; stored");
  CHECK(d.get(t).header("cache-status") == "sidecache; hit");
  // The Redis TTL matches the entity's (1 s, no jitter).
  auto keys = s.redis_cli("--scan --pattern " + d.prefix() + "t:*short_user*" + uid.substr(0, 8) + "*");
  REQUIRE_FALSE(keys.empty());
  long long pttl = std::stoll(s.redis_cli("PTTL " + keys));
  CHECK(pttl > 0);
  CHECK(pttl <= 1000);
  s.sql("UPDATE users SET display_name = 'ttl2' WHERE id = '" + uid + "'");
  Response r;
  for (int i = 0; i < 60; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    r = d.get(t);
    if (r.header("cache-status") != "sidecache; hit") break;
  }
  CHECK(r.header("cache-status") == "sidecache; fwd=miss; stored");
  CHECK(parse(r.body).as_object().at("display_name").as_string() == "ttl2");
}

TEST_CASE("tenant isolation: one user id under two orgs gives two answers and two keys") {
  Services& s = Services::get();
  Daemon d;
  auto a = d.get(user_target("user", kOrg1, kUidA));
  auto b = d.get(user_target("user", kOrg2, kUidA));
  REQUIRE(a.status == 200);
  REQUIRE(b.status == 200);
  CHECK(parse(a.body).as_object().at("email").as_string() == "ada@acme.example");
  CHECK(parse(b.body).as_object().at("email").as_string() == "hank@globex.example");
  // Both cached, each still the right one.
  auto a2 = d.get(user_target("user", kOrg1, kUidA));
  auto b2 = d.get(user_target("user", kOrg2, kUidA));
  CHECK(a2.header("cache-status") == "sidecache; hit");
  CHECK(b2.header("cache-status") == "sidecache; hit");
  CHECK(a2.body == a.body);
  CHECK(b2.body == b.body);
  auto k1 = s.redis_cli("--scan --pattern " + d.prefix() + "t:" + kOrg1 + ":user:*");
  auto k2 = s.redis_cli("--scan --pattern " + d.prefix() + "t:" + kOrg2 + ":user:*");
  CHECK(k1.find(kUidA) != std::string::npos);
  CHECK(k2.find(kUidA) != std::string::npos);
  CHECK(k1 != k2);
  // A user of org 2 asked for under org 1 does not exist there.
  CHECK(d.get(user_target("user", kOrg1, "cccccccc-cccc-cccc-cccc-cccccccccccc")).status == 404);
}

TEST_CASE("string params with key-breaking characters stay apart", "[topology]") {
  Daemon d;
  auto one = d.get("/v1/entities/search?org_id=" + kOrg1 + "&q=a%3Ab");
  auto two = d.get("/v1/entities/search?org_id=" + kOrg1 + "&q=a%253Ab");
  auto glob = d.get("/v1/entities/search?org_id=" + kOrg1 + "&q=*");
  REQUIRE(one.status == 200);
  CHECK(parse(one.body).as_array()[0].as_object().at("q").as_string() == "a:b");
  CHECK(parse(two.body).as_array()[0].as_object().at("q").as_string() == "a%3Ab");
  CHECK(two.header("cache-status") == "sidecache; fwd=miss; stored");
  CHECK(glob.header("cache-status") == "sidecache; fwd=miss; stored");
  CHECK(parse(glob.body).as_array()[0].as_object().at("q").as_string() == "*");
}

TEST_CASE("200 concurrent requests for one cold key make exactly one query", "[topology]") {
  Services& s = Services::get();
  Daemon d;
  const std::string marker = "AS slow";
  std::string uid = new_user(s, "stampede");
  long long before = s.query_count(marker);
  constexpr int kClients = 200;
  auto answers = all_at_once(kClients, [&](int) { return d.get(user_target("slow_user", kOrg1, uid)); });
  int ok = 0, stored = 0, collapsed = 0, hits = 0;
  for (const auto& a : answers) {
    if (a.status == 200) ++ok;
    auto cs = a.header("cache-status");
    if (cs == "sidecache; fwd=miss; stored") ++stored;
    if (cs == "sidecache; fwd=miss; collapsed") ++collapsed;
    if (cs == "sidecache; hit") ++hits;
  }
  INFO("stored=" << stored << " collapsed=" << collapsed << " hits=" << hits);
  CHECK(ok == kClients);
  CHECK(stored == 1);
  CHECK(stored + collapsed + hits == kClients);
  CHECK(s.query_count(marker) - before == 1);  // counted by PostgreSQL itself
}

namespace {
long long command_calls(const std::string& cmd) {
  std::string stats = Services::get().redis_cli("INFO commandstats");
  const std::string field = "cmdstat_" + cmd + ":calls=";
  auto pos = stats.find(field);
  return pos == std::string::npos ? 0 : std::stoll(stats.substr(pos + field.size()));
}
}  // namespace

TEST_CASE("once a worker's looks at an entity mostly miss, its misses send no lookup: the begin script looks") {
  Services& s = Services::get();
  Daemon::Options opt;
  opt.workers = 1;  // one worker, so every look below counts for the guess
  Daemon d(opt);
  auto miss = [&] {
    auto r = d.get(user_target("user", kOrg1, s.sql("SELECT gen_random_uuid()")));
    REQUIRE(r.status == 404);
    CHECK(r.header("cache-status") == "sidecache; fwd=miss; stored");
  };
  for (int i = 0; i < 16; ++i) miss();
  // Each miss now: the begin (its MGET inside) and the commit; no MGET
  // of its own. (Redis counts the commands a script runs as calls.)
  long long mget = command_calls("mget"), evalsha = command_calls("evalsha");
  for (int i = 0; i < 10; ++i) miss();
  CHECK(command_calls("mget") - mget == 10);
  CHECK(command_calls("evalsha") - evalsha == 20);
  std::string metrics = d.get("/metrics").body;
  CHECK(metric_sample(metrics, "sidecache_cold_looks_total{entity=\"user\",key=\"cold\"} ") == 10);
  // A wrong guess: a stored value is answered from the begin's look, as a hit.
  auto stored = d.get(user_target("user", kOrg1, kUidA));
  if (stored.header("cache-status") != "sidecache; hit") {
    // (Not cached yet: the first read filled it; the guess is still cold.)
    REQUIRE(stored.status == 200);
    stored = d.get(user_target("user", kOrg1, kUidA));
  }
  CHECK(stored.status == 200);
  CHECK(stored.header("cache-status") == "sidecache; hit");
  CHECK(parse(stored.body).as_object().at("id").as_string() == kUidA);
  metrics = d.get("/metrics").body;
  CHECK(metric_sample(metrics, "sidecache_cold_looks_total{entity=\"user\",key=\"warm\"} ") >= 1);
  // Invalidated, a cold look finds the tombstone and fills the row again.
  REQUIRE(http_request(d.port(), "DELETE", user_target("user", kOrg1, kUidA)).status == 200);
  auto again = d.get(user_target("user", kOrg1, kUidA));
  CHECK(again.status == 200);
  CHECK(again.header("cache-status") == "sidecache; fwd=miss; stored");
}

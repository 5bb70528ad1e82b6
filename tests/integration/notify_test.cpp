// Invalidate on write: writes made with plain SQL, never through sidecache,
// reach the cache through the printed triggers and LISTEN/NOTIFY.
#include <catch2/catch.hpp>

#include <boost/json.hpp>
#include <csignal>
#include <thread>

#include "harness.hpp"

using namespace sidecache::it;
namespace json = boost::json;

namespace {
const std::string kOrg1 = "11111111-1111-1111-1111-111111111111";

std::string user(const std::string& uid) { return "/v1/entities/user?org_id=" + kOrg1 + "&user_id=" + uid; }

// Polls for at most one second (the bound for a write to show).
Response within_a_second(const Daemon& d, const std::string& target, const std::function<bool(const Response&)>& ok) {
  Response r;
  for (int i = 0; i < 20; ++i) {
    r = d.get(target);
    if (ok(r)) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return r;
}

// Reads until the answer is a hit: the notification of the row's own
// INSERT may still be on its way and invalidate the first fill.
bool cached(const Daemon& d, const std::string& target) {
  return within_a_second(d, target, [](const Response& r) { return r.header("cache-status") == "sidecache; hit"; })
             .header("cache-status") == "sidecache; hit";
}

std::string name_of(const Response& r) {
  return r.status == 200 ? std::string(json::parse(r.body).at("display_name").as_string()) : "";
}

std::string new_user(const std::string& name) {
  return Services::get().sql("INSERT INTO users (id, org_id, email, display_name) VALUES (gen_random_uuid(), '" + kOrg1 +
                             "', '" + name + "@test.example', '" + name + "') RETURNING id");
}
}  // namespace

TEST_CASE("UPDATE, INSERT and DELETE made with plain SQL reach the cache within a second") {
  Services& s = Services::get();
  Daemon d;
  Triggers triggers(d);

  SECTION("UPDATE") {
    std::string uid = new_user("upd");
    REQUIRE(name_of(d.get(user(uid))) == "upd");
    REQUIRE(cached(d, user(uid)));
    s.sql("UPDATE users SET display_name = 'upd2' WHERE id = '" + uid + "'");
    CHECK(name_of(within_a_second(d, user(uid), [](const Response& r) { return name_of(r) == "upd2"; })) == "upd2");
  }
  SECTION("INSERT of a row whose absence was cached") {
    std::string uid = s.sql("SELECT gen_random_uuid()");
    REQUIRE(d.get(user(uid)).status == 404);
    REQUIRE(cached(d, user(uid)));
    s.sql("INSERT INTO users (id, org_id, email, display_name) VALUES ('" + uid + "', '" + kOrg1 + "', 'i@x', 'ins')");
    CHECK(within_a_second(d, user(uid), [](const Response& r) { return r.status == 200; }).status == 200);
  }
  SECTION("DELETE") {
    std::string uid = new_user("del");
    REQUIRE(d.get(user(uid)).status == 200);
    REQUIRE(cached(d, user(uid)));
    s.sql("DELETE FROM users WHERE id = '" + uid + "'");
    CHECK(within_a_second(d, user(uid), [](const Response& r) { return r.status == 404; }).status == 404);
  }
  SECTION("an UPDATE that moves a row between keys invalidates both") {
    std::string from = new_user("mover");
    std::string to = s.sql("SELECT gen_random_uuid()");
    REQUIRE(d.get(user(from)).status == 200);
    REQUIRE(d.get(user(to)).status == 404);
    REQUIRE(cached(d, user(from)));
    REQUIRE(cached(d, user(to)));
    s.sql("UPDATE users SET id = '" + to + "' WHERE id = '" + from + "'");
    CHECK(within_a_second(d, user(from), [](const Response& r) { return r.status == 404; }).status == 404);
    CHECK(within_a_second(d, user(to), [](const Response& r) { return r.status == 200; }).status == 200);
  }
  SECTION("a tenant-wide rule: a new user shows on the org's first page") {
    std::string page = "/v1/entities/users_page?org_id=" + kOrg1 + "&page=1&page_size=100";
    auto before = d.get(page);
    REQUIRE(before.status == 200);
    REQUIRE(cached(d, page));
    std::string uid = new_user("paged");
    auto after = within_a_second(d, page, [&](const Response& r) { return r.body.find(uid) != std::string::npos; });
    CHECK(after.body.find(uid) != std::string::npos);
  }
  SECTION("a global entity, and a rule keyed by another tenant column") {
    REQUIRE(d.get("/v1/entities/feature_flags").status == 200);
    REQUIRE(cached(d, "/v1/entities/feature_flags"));
    s.sql("UPDATE feature_flags SET rollout_percent = rollout_percent WHERE name = 'sso'");
    CHECK(within_a_second(d, "/v1/entities/feature_flags", [](const Response& r) {
            return r.header("cache-status") != "sidecache; hit";
          }).header("cache-status") == "sidecache; fwd=miss; stored");
    std::string cfg = "/v1/entities/org_config?org_id=" + kOrg1;
    REQUIRE(d.get(cfg).status == 200);
    REQUIRE(cached(d, cfg));
    s.sql("UPDATE orgs SET name = name WHERE id = '" + kOrg1 + "'");  // orgs holds the tenant in "id"
    CHECK(within_a_second(d, cfg, [](const Response& r) { return r.header("cache-status") != "sidecache; hit"; })
              .header("cache-status") == "sidecache; fwd=miss; stored");
  }
}

TEST_CASE("a lost listener connection invalidates every listening entity when it comes back") {
  Services& s = Services::get();
  Daemon d;
  Triggers triggers(d);
  std::string uid = new_user("lost");
  REQUIRE(d.get(user(uid)).status == 200);
  REQUIRE(cached(d, user(uid)));
  REQUIRE(d.get("/v1/entities/type_zoo?id=1").status == 200);  // no invalidate_on: must survive

  s.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sidecache-listener'");
  Response ready;
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (d.log().find("listener is back") != std::string::npos) break;
  }
  INFO(d.log());
  CHECK(d.log().find("lost its connection") != std::string::npos);
  CHECK(d.log().find("listener is back") != std::string::npos);
  // Nothing was written, but notifications might have been: the key is gone.
  auto after = within_a_second(d, user(uid), [](const Response& r) { return r.header("cache-status") != "sidecache; hit"; });
  CHECK(after.header("cache-status") == "sidecache; fwd=miss; stored");
  CHECK(d.get("/v1/entities/type_zoo?id=1").header("cache-status") == "sidecache; hit");
  // And notifications flow again.
  s.sql("UPDATE users SET display_name = 'lost2' WHERE id = '" + uid + "'");
  CHECK(name_of(within_a_second(d, user(uid), [](const Response& r) { return name_of(r) == "lost2"; })) == "lost2");
}

TEST_CASE("a flush at LISTEN that cannot reach Redis shows as flushing in /readyz until it takes effect, and takes "
          "effect when Redis is back") {
  Services& s = Services::get();
  Daemon d;
  std::string uid = new_user("flushing"), other = new_user("probe");
  REQUIRE(d.get(user(uid)).status == 200);
  REQUIRE(cached(d, user(uid)));
  auto listener = [&] {
    return std::string(json::parse(d.get("/readyz").body).at("invalidation_listener").at("state").as_string());
  };
  REQUIRE(listener() == "up");
  s.signal_redis(SIGSTOP);
  struct Continue {
    ~Continue() { Services::get().signal_redis(SIGCONT); }
  } resume;
  s.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sidecache-listener'");
  INFO(d.log());
  // Listening again, but the flush has not taken effect: said so, and
  // stays so while Redis does not answer.
  REQUIRE(eventually([&] { return listener() == "flushing"; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(listener() == "flushing");
  s.signal_redis(SIGCONT);
  // Reads of another key let the breaker probe Redis again.
  CHECK(eventually([&] {
    d.get(user(other));
    return listener() == "up";
  }, 200));
  CHECK(d.log().find("the flush at LISTEN took effect") != std::string::npos);
  // It did: the value cached before it is gone.
  CHECK(d.get(user(uid)).header("cache-status") == "sidecache; fwd=miss; stored");
}

TEST_CASE("with flush_on_listen off, a listener that comes back says it invalidated nothing, and keeps the values") {
  Services& s = Services::get();
  Daemon::Options o;
  o.invalidation_extra = ", flush_on_listen: false";
  Daemon d(o);
  Triggers triggers(d);
  std::string uid = new_user("kept");
  REQUIRE(d.get(user(uid)).status == 200);
  REQUIRE(cached(d, user(uid)));
  s.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sidecache-listener'");
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (d.log().find("listener is back") != std::string::npos) break;
  }
  INFO(d.log());
  CHECK(d.log().find("nothing was invalidated for them (invalidation.flush_on_listen is off)") != std::string::npos);
  CHECK(d.log().find("so every entity with invalidate_on is invalidated now") == std::string::npos);
  CHECK(d.get(user(uid)).header("cache-status") == "sidecache; hit");
}

TEST_CASE("with L1 on, a write notified to one process evicts the L1 copy of another") {
  Daemon::Options opt;
  opt.extra_main = "l1: { max_bytes: 8MiB, ttl: 60s }\n";
  Daemon a(opt);
  opt.key_prefix = a.prefix();
  Daemon b(opt);  // listens on its own channel: only a hears the triggers
  Triggers t(a);
  std::string uid = new_user("l1notify");
  auto target = user(uid);
  REQUIRE(within_a_second(b, target, [](const Response& r) {
            return r.header("cache-status") == "sidecache; hit; detail=l1";
          }).header("cache-status") == "sidecache; hit; detail=l1");
  Services::get().sql("UPDATE users SET display_name = 'l1notify-2' WHERE id = '" + uid + "'");
  // With l1 ttl 60s, only the invalidation a published can have evicted it.
  auto r = within_a_second(b, target, [](const Response& r) { return name_of(r) == "l1notify-2"; });
  CHECK(name_of(r) == "l1notify-2");
}

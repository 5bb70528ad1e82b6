// Invalidation against real Redis and PostgreSQL: the API's scopes, and the
// fill-vs-invalidate race across two sidecache processes.
#include <catch2/catch.hpp>

#include <boost/json.hpp>
#include <atomic>
#include <mutex>
#include <sstream>
#include <thread>

#include "harness.hpp"
#include "sidecache/cache/cold_guess.hpp"

using namespace sidecache::it;
namespace json = boost::json;

namespace {
const std::string kOrg1 = "11111111-1111-1111-1111-111111111111";
const std::string kOrg2 = "22222222-2222-2222-2222-222222222222";
const std::string kUidA = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa";

std::string user(const std::string& entity, const std::string& org, const std::string& uid) {
  return "/v1/entities/" + entity + "?org_id=" + org + "&user_id=" + uid;
}
std::string org_config(const std::string& org) { return "/v1/entities/org_config?org_id=" + org; }
std::string cache_status(const Daemon& d, const std::string& target) { return d.get(target).header("cache-status"); }
Response invalidate(const Daemon& d, const std::string& body) {
  return http_request(d.port(), "POST", "/v1/invalidate", {"Content-Type: application/json"}, body);
}
std::string name_of(const Response& r) {
  return std::string(json::parse(r.body).as_object().at("display_name").as_string());
}
}  // namespace

TEST_CASE("DELETE invalidates one key, the next read is fresh", "[topology]") {
  Services& s = Services::get();
  Daemon d;
  std::string uid = s.sql("INSERT INTO users (id, org_id, email, display_name) VALUES (gen_random_uuid(), '" + kOrg1 +
                          "', 'del@test.example', 'before') RETURNING id");
  auto t = user("user", kOrg1, uid);
  REQUIRE(d.get(t).status == 200);
  REQUIRE(cache_status(d, t) == "sidecache; hit");
  s.sql("UPDATE users SET display_name = 'after' WHERE id = '" + uid + "'");
  auto del = http_request(d.port(), "DELETE", t);
  REQUIRE(del.status == 200);
  auto body = json::parse(del.body).as_object();
  CHECK(body.at("invalidated").as_string() == "key");
  CHECK(body.at("entity").as_string() == "user");
  auto fresh = d.get(t);
  CHECK(fresh.header("cache-status") == "sidecache; fwd=miss; stored");
  CHECK(name_of(fresh) == "after");
  CHECK(cache_status(d, t) == "sidecache; hit");
  // The same 400s as GET.
  auto bad = http_request(d.port(), "DELETE", "/v1/entities/user?org_id=" + kOrg1);
  CHECK(bad.status == 400);
  CHECK(json::parse(bad.body).at("param").as_string() == "user_id");
}

TEST_CASE("tenant, entity and all-tenant flushes hit exactly their scope", "[topology]") {
  Daemon d;
  std::vector<std::string> a{user("user", kOrg1, kUidA), org_config(kOrg1)};
  std::vector<std::string> b{user("user", kOrg2, kUidA), org_config(kOrg2)};
  auto warm = [&] {
    for (const auto& t : a) REQUIRE(d.get(t).status == 200);
    for (const auto& t : b) REQUIRE(d.get(t).status == 200);
    for (const auto& t : a) REQUIRE(cache_status(d, t) == "sidecache; hit");
    for (const auto& t : b) REQUIRE(cache_status(d, t) == "sidecache; hit");
  };

  SECTION("a tenant: every entity of tenant A, nothing of tenant B") {
    warm();
    auto r = invalidate(d, R"({"tenant":")" + kOrg1 + R"("})");
    REQUIRE(r.status == 200);
    CHECK(json::parse(r.body).at("invalidated").as_string() == "tenant");
    for (const auto& t : a) CHECK(cache_status(d, t) == "sidecache; fwd=miss; stored");
    for (const auto& t : b) CHECK(cache_status(d, t) == "sidecache; hit");
  }
  SECTION("one entity of one tenant") {
    warm();
    auto r = invalidate(d, R"({"entity":"user","tenant":")" + kOrg1 + R"("})");
    REQUIRE(r.status == 200);
    CHECK(json::parse(r.body).at("invalidated").as_string() == "entity");
    CHECK(cache_status(d, a[0]) == "sidecache; fwd=miss; stored");
    CHECK(cache_status(d, a[1]) == "sidecache; hit");
    CHECK(cache_status(d, b[0]) == "sidecache; hit");
    CHECK(cache_status(d, b[1]) == "sidecache; hit");
  }
  SECTION("one entity for all tenants") {
    warm();
    auto r = invalidate(d, R"({"entity":"user"})");
    REQUIRE(r.status == 200);
    CHECK(json::parse(r.body).at("invalidated").as_string() == "entity_all_tenants");
    CHECK(cache_status(d, a[0]) == "sidecache; fwd=miss; stored");
    CHECK(cache_status(d, b[0]) == "sidecache; fwd=miss; stored");
    CHECK(cache_status(d, a[1]) == "sidecache; hit");
    CHECK(cache_status(d, b[1]) == "sidecache; hit");
  }
  SECTION("one key through POST") {
    warm();
    auto r = invalidate(d, R"({"entity":"user","params":{"org_id":")" + kOrg1 + R"(","user_id":")" + kUidA + R"("}})");
    REQUIRE(r.status == 200);
    CHECK(json::parse(r.body).at("invalidated").as_string() == "key");
    CHECK(cache_status(d, a[0]) == "sidecache; fwd=miss; stored");
    CHECK(cache_status(d, b[0]) == "sidecache; hit");
  }
}

TEST_CASE("a global entity is flushed as a whole", "[topology]") {
  Daemon d;
  REQUIRE(d.get("/v1/entities/feature_flags").status == 200);
  REQUIRE(cache_status(d, "/v1/entities/feature_flags") == "sidecache; hit");
  auto r = invalidate(d, R"({"entity":"feature_flags"})");
  REQUIRE(r.status == 200);
  CHECK(json::parse(r.body).at("invalidated").as_string() == "entity");
  CHECK(cache_status(d, "/v1/entities/feature_flags") == "sidecache; fwd=miss; stored");
}

TEST_CASE("a bad invalidation body is a 400, an oversized one a 413") {
  Daemon d;
  auto bad = invalidate(d, R"({"tenant":"not-a-uuid"})");
  CHECK(bad.status == 400);
  CHECK(json::parse(bad.body).at("error").as_string() == "bad_param");
  auto unknown = invalidate(d, R"({"entity":"user","color":"red"})");
  CHECK(unknown.status == 400);
  CHECK(json::parse(unknown.body).at("field").as_string() == "color");
  auto huge = invalidate(d, R"({"tenant":")" + std::string(70000, 'x') + R"("})");
  CHECK(huge.status == 413);
}

TEST_CASE("an invalidation that cannot reach Redis says so") {
  Services& s = Services::get();
  Daemon d;
  s.stop_redis();
  struct Restore { Services& s; ~Restore() { s.start_redis(); } } restore{s};
  auto r = invalidate(d, R"({"tenant":")" + kOrg1 + R"("})");
  CHECK(r.status == 503);
  CHECK(json::parse(r.body).at("error").as_string() == "unavailable");
}

// The classic cache-aside race: a reader misses and reads the old row; a
// writer commits and invalidates; the reader must not then store the old
// row. Two sidecache processes share Redis; several readers on each keep
// reading while the writer updates and invalidates in the middle of slow
// fills. Every read that starts after an invalidation returned must see the
// new row.
namespace {
// With L1 on, a process hears of another process's invalidation over Redis
// pub/sub: reads in the process that invalidated are never stale once it
// answered, and reads in the other process are never stale once the
// message has arrived. A read there that started within this much of the
// invalidation's answer may still be served the old row from L1.
constexpr auto kL1Propagation = std::chrono::milliseconds(200);

// The race's slow read of one user (300 ms), as an entity named `name`
// with more YAML after its SQL.
const std::string kSlowSelect =
    "SELECT id, email, display_name, (SELECT true FROM pg_sleep(0.3)) AS slow FROM users WHERE org_id = :org_id AND id";
std::string slow_user(const std::string& name, const std::string& more) {
  return "name: " + name + "\nscope: tenant\nparams:\n  user_id: uuid\nresult: row\nsql: " + kSlowSelect +
         " = :user_id\n" + more;
}

// The race's readers GET the key, or (batch) read it with POST /v1/batch
// next to a second cold key of the same org, through an entity whose batch
// form fills both with one 300 ms query.
const std::string kSlowBatchUser =
    slow_user("slow_batch_user", "batch:\n  param: user_id\n  sql: " + kSlowSelect + " = ANY(:user_id)\n  key_column: id\n");

// The race by tags: the same slow read, tagged by a param and by a result
// column; the writer invalidates by one tag or the other.
const std::string kSlowTaggedUser = slow_user("slow_tagged_user", "tags: [\"user:{user_id}\", \"mail:{row.email}\"]\n");

// `cold`: one worker per daemon, whose looks at the entity are made to
// miss before each iteration, so the racing fills (and the reads after)
// skip the lookup and let the begin look (cache/cold_guess.hpp).
void race(bool l1, bool batch = false, bool tags = false, bool cold = false) {
  Services& s = Services::get();
  Daemon::Options opt;
  if (batch) opt.extra_entities = {{"slow_batch_user.yaml", kSlowBatchUser}};
  if (tags) opt.extra_entities = {{"slow_tagged_user.yaml", kSlowTaggedUser}};
  // Twelve readers and two daemons on two cores: a Redis answer can take
  // longer than the usual 50 ms, and this test is about invalidation, not
  // Redis timeouts (an invalidation that cannot reach Redis answers 503).
  opt.redis_timeout = "500ms";
  if (l1) opt.extra_main = "l1: { max_bytes: 8MiB, ttl: 60s }\n";
  if (cold) opt.workers = 1;
  Daemon a(opt);
  opt.key_prefix = a.prefix();  // two pods of one service share one key space
  Daemon b(opt);
  using Clock = std::chrono::steady_clock;
  struct Read { Clock::time_point start; std::string name; int status; const Daemon* via; bool l1_hit; std::string cache; };
  constexpr int kIterations = 6, kReadersPerDaemon = 3;
  int late_reads = 0, stale_late_reads = 0, old_reads = 0, l1_hits = 0, propagating_stale = 0;
  Clock::duration worst_lag{};
  std::ostringstream stale_seen;
  const std::string batch_marker = "AS slow FROM users WHERE org_id = $1 AND id = ANY($2)";
  const long long batch_queries_before = batch ? s.query_count(batch_marker) : 0;

  for (int it = 0; it < kIterations; ++it) {
    INFO("iteration " << it);
    std::string uid = s.sql("INSERT INTO users (id, org_id, email, display_name) VALUES (gen_random_uuid(), '" + kOrg1 +
                            "', 'race@test.example', 'v0') RETURNING id");
    const char* entity = batch ? "slow_batch_user" : tags ? "slow_tagged_user" : "slow_user";
    auto t = user(entity, kOrg1, uid);
    std::string other = s.sql("INSERT INTO users (id, org_id, email, display_name) VALUES (gen_random_uuid(), '" + kOrg1 +
                              "', 'race2@test.example', 'other') RETURNING id");
    const std::string batch_body = std::string(R"({"requests":[{"entity":"slow_batch_user","params":{"org_id":")") + kOrg1 +
                                   R"(","user_id":")" + uid + R"("}},{"entity":"slow_batch_user","params":{"org_id":")" +
                                   kOrg1 + R"(","user_id":")" + other + R"("}}]})";
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::vector<Read> reads;
    std::vector<std::thread> readers;
    // One read, recorded with the moment it started.
    auto read_once = [&](const Daemon& d) {
      Read rd{Clock::now(), {}, 0, &d, false, {}};
      if (batch) {
        auto resp = http_request(d.port(), "POST", "/v1/batch", {"Content-Type: application/json"}, batch_body);
        rd.status = resp.status;
        if (resp.status == 200) {
          json::value v = json::parse(resp.body);
          const json::object& first = v.at("results").as_array().at(0).as_object();
          rd.status = first.at("status").to_number<int>();
          rd.cache = std::string(first.at("cache").as_string());
          rd.l1_hit = rd.cache == "hit; detail=l1";
          if (rd.status == 200) rd.name = std::string(first.at("body").at("display_name").as_string());
        }
      } else {
        auto resp = d.get(t);
        rd.status = resp.status;
        rd.cache = resp.header("cache-status");
        rd.l1_hit = rd.cache == "sidecache; hit; detail=l1";
        if (resp.status == 200) rd.name = name_of(resp);
      }
      std::lock_guard lock(mu);
      reads.push_back(rd);
    };
    if (cold) {
      // Misses on users that do not exist, 16 per daemon at once.
      std::vector<std::thread> misses;
      for (int m = 0; m < 2 * sidecache::cache::ColdGuess::kWindow; ++m)
        misses.emplace_back([&, m] {
          const Daemon& d = m % 2 ? b : a;
          d.get(user(entity, kOrg1, s.sql("SELECT gen_random_uuid()")));
        });
      for (auto& th : misses) th.join();
    }
    for (int r = 0; r < 2 * kReadersPerDaemon; ++r) {
      const Daemon& d = r % 2 ? b : a;
      readers.emplace_back([&, &d = d] {
        while (!stop) read_once(d);
      });
    }
    // Fills that read v0 are in flight (the query sleeps 300 ms).
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (l1 && it % 2 == 1) {
      // This time v0 is stored first and both processes serve it from L1:
      // the invalidation must reach the other process's copy.
      REQUIRE(eventually([&] {
        return a.get(t).header("cache-status") == "sidecache; hit; detail=l1" &&
               b.get(t).header("cache-status") == "sidecache; hit; detail=l1";
      }));
    }
    s.sql("UPDATE users SET display_name = 'v1' WHERE id = '" + uid + "'");
    const Daemon& via = it % 2 ? b : a;
    // By tags: a column tag (every race row of the org has this email), or
    // the param tag of this user; each against fills in flight (even
    // iterations) and against copies in L1 (odd ones).
    const std::string tag = it % 4 == 0 || it % 4 == 3 ? "mail:race@test.example" : "user:" + uid;
    auto send = [&] {
      return tags          ? invalidate(via, R"({"tenant":")" + kOrg1 + R"(","tag":")" + tag + R"("})")
             : it % 3 == 2 ? invalidate(via, std::string(R"({"entity":")") + entity + R"(","tenant":")" + kOrg1 + R"("})")
                           : http_request(via.port(), "DELETE", t);
    };
    Response inv = send();
    // A 503 says Redis did not answer in time and asks to retry, as a client
    // would: the reads that must see the new row are those after the answer
    // that says it took effect. (The readers load two cores; a cluster
    // node's answer once took more than the daemons' 500 ms.)
    for (int retry = 0; retry < 3 && inv.status == 503; ++retry) {
      WARN("iteration " << it << ": the invalidation answered 503, retried: " << inv.body << "\nit said:\n" << via.said(1500));
      inv = send();
    }
    if (inv.status != 200) {
      stop = true;
      for (auto& th : readers) th.join();
      // With what both said: why Redis could not be reached, if it could not.
      FAIL("the invalidation answered " << inv.status << ": " << inv.body << "\nA:\n" << a.said() << "\nB:\n" << b.said());
    }
    auto returned = Clock::now();
    // Requests that arrive now, while the old fill is still in flight: in
    // each process they find it and would be handed its old row.
    for (int r = 0; r < 2 * kReadersPerDaemon; ++r) {
      const Daemon& d = r % 2 ? b : a;
      readers.emplace_back([&, &d = d] { read_once(d); });
    }
    // Long enough for every fill that began before the invalidation to try
    // to store its old row.
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    stop = true;
    for (auto& th : readers) th.join();
    for (const auto& rd : reads) {
      CHECK(rd.status == 200);
      l1_hits += rd.l1_hit;
      if (rd.start > returned) {
        ++late_reads;
        if (rd.name == "v1") continue;
        // Only L1 in the other process, before the message arrived, may
        // still answer the old row.
        if (l1 && rd.via != &via && rd.l1_hit && rd.start - returned < kL1Propagation) {
          ++propagating_stale;
          worst_lag = std::max(worst_lag, rd.start - returned);
        } else {
          ++stale_late_reads;
          // Which path answered it, for the failure's message.
          stale_seen << "\n  iteration " << it << ", " << (rd.via == &via ? "same" : "other") << " process, "
                     << std::chrono::duration_cast<std::chrono::microseconds>(rd.start - returned).count()
                     << " us after the invalidation answered: " << rd.name << " (" << rd.cache << ")";
        }
      } else if (rd.name == "v0") {
        ++old_reads;
      }
    }
    // The cache holds the new row afterwards, in both processes.
    CHECK(name_of(a.get(t)) == "v1");
    CHECK(name_of(b.get(t)) == "v1");
  }
  INFO("reads after an invalidation: " << late_reads << ", of which stale: " << stale_late_reads << stale_seen.str()
                                       << "; old rows served before the invalidation returned: " << old_reads);
  if (l1)
    WARN("L1 on: " << l1_hits << " L1 hits; " << propagating_stale
                   << " reads in the other process started before its message arrived and got the old row; the latest "
                   << std::chrono::duration_cast<std::chrono::microseconds>(worst_lag).count()
                   << " us after the invalidation answered");
  CHECK(late_reads > 0);
  CHECK(old_reads > 0);  // the race was really exercised: fills did read v0
  CHECK(stale_late_reads == 0);
  if (l1) CHECK(l1_hits > 0);
  if (cold) {
    // Both processes did fill without looking first.
    const std::string series = std::string("sidecache_cold_looks_total{entity=\"") + "slow_user" + "\",key=\"cold\"} ";
    CHECK(metric_sample(a.get("/metrics").body, series) > 0);
    CHECK(metric_sample(b.get("/metrics").body, series) > 0);
  }
  if (batch) CHECK(s.query_count(batch_marker) > batch_queries_before);  // the batch form did fill
}
}  // namespace

TEST_CASE("an invalidation wins over a racing fill, across two processes", "[topology]") { race(false); }

TEST_CASE("an invalidation wins over a racing fill, across two processes, with L1 on", "[topology]") { race(true); }

TEST_CASE("an invalidation wins over a racing fill, across two processes, filled without a lookup first", "[topology]") {
  race(false, false, false, true);
}

TEST_CASE("an invalidation wins over a racing fill, across two processes, read by batches filled by a batch form with L1 on", "[topology]") {
  race(true, true);
}

TEST_CASE("a tag invalidation wins over a racing fill, across two processes, by a param tag and by a column tag, with L1 on", "[topology]") {
  race(true, false, true);
}

// Read replicas: a real streaming replica (pg_basebackup -R) that applies
// WAL 300 ms late. Fills read it only once it has replayed every
// invalidation that covers their key; otherwise they read the primary.
#include <catch2/catch.hpp>

#include <boost/json.hpp>
#include <atomic>
#include <random>
#include <thread>

#include "harness.hpp"

using namespace sidecache::it;
namespace json = boost::json;

namespace {

const std::string kOrg = "99999999-0000-4000-8000-000000000031";

// The alias names it in pg_stat_statements (literals are normalised away).
const char* kEntity = R"(name: replica_user
scope: tenant
params:
  user_id: uuid
result: row
sql: SELECT id, email, display_name AS replica_marker FROM users WHERE org_id = :org_id AND id = :user_id
invalidate_on:
  - table: users
    params: { user_id: id }
)";

std::string target(const std::string& uid) {
  return "/v1/entities/replica_user?org_id=" + kOrg + "&user_id=" + uid;
}

std::string name_of(const Response& r) {
  if (r.status != 200) return "status " + std::to_string(r.status);
  return std::string(json::parse(r.body).at("replica_marker").as_string());
}

Daemon::Options with_replica(const std::string& extra = {}) {
  Services& s = Services::get();
  Daemon::Options o;
  o.postgres_extra = "\n  replicas: [\"" + s.replica_dsn() + "\"]" + extra;
  o.extra_entities = {{"replica_user.yaml", kEntity}};
  return o;
}

bool replica_up(const Daemon& d) {
  return d.get("/readyz").body.find("\"name\":\"replica0\"") != std::string::npos &&
         d.get("/readyz").body.find("\"state\":\"up\",\"replayed\"") != std::string::npos;
}

double notify_invalidations(const Daemon& d) {
  return metric_sample(d.get("/metrics").body, "sidecache_invalidations_total{scope=\"key\",source=\"notify\"} ");
}

long long replica_count(const std::string& marker) {
  std::string v = Services::get().replica_sql(
      "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE '%" + marker +
      "%' AND query NOT LIKE '%pg_stat_statements%'");
  return v.empty() ? 0 : std::stoll(v);
}

// Whether the replica has replayed the row (false while it has not even
// replayed the table).
bool on_replica(const std::string& uid) {
  try {
    return Services::get().replica_sql("SELECT count(*) FROM users WHERE id = '" + uid + "'") == "1";
  } catch (const std::exception&) {
    return false;
  }
}

std::string new_user(const std::string& name) {
  Services& s = Services::get();
  s.sql("INSERT INTO orgs (id, name) VALUES ('" + kOrg + "', 'replicas') ON CONFLICT DO NOTHING");
  return s.sql("INSERT INTO users (id, org_id, email, display_name) VALUES (gen_random_uuid(), '" + kOrg + "', '" +
               name + "@test.example', '" + name + "') RETURNING id");
}

}  // namespace

TEST_CASE("replica race: after an update and its invalidation (API or trigger), no read returns the old row, "
          "while fills of untouched keys go to the replica") {
  Services& s = Services::get();
  Daemon d(with_replica());
  Triggers triggers(d);
  REQUIRE(eventually([&] { return replica_up(d); }));
  std::string uid = new_user("race");
  REQUIRE(eventually([&] { return on_replica(uid); }));
  REQUIRE(eventually([&] { return name_of(d.get(target(uid))) == "race"; }));

  int old_rows = 0;
  std::string seen;
  for (int i = 0; i < 30; ++i) {
    std::string value = "v" + std::to_string(i);
    REQUIRE(d.get(target(uid)).status == 200);  // cached (or filled) before the write
    double before = notify_invalidations(d);
    s.sql("UPDATE users SET display_name = '" + value + "' WHERE id = '" + uid + "'");
    if (i % 2 == 0) {
      REQUIRE(http_request(d.port(), "DELETE", target(uid)).status == 200);
    } else {
      // The trigger's NOTIFY: both entities on users invalidate the key.
      REQUIRE(eventually([&] { return notify_invalidations(d) >= before + 2; }));
    }
    // The replica replays the update 300 ms from now: a fill that read it
    // would answer, and store, the old row.
    std::string got = name_of(d.get(target(uid)));
    if (got != value) {
      ++old_rows;
      seen += (i % 2 ? " trigger:" : " api:") + got + "!=" + value;
    }
  }
  INFO(seen);
  CHECK(old_rows == 0);
  auto metrics = d.get("/metrics").body;
  CHECK(metric_sample(metrics, "sidecache_pg_replica_waits_total{outcome=\"gave_up\",replica=\"replica0\"} ") > 0);
  CHECK(metric_sample(metrics, "sidecache_pg_replica_fallbacks_total{reason=\"behind\",replica=\"replica0\"} ") > 0);

  // Keys no invalidation covers: their fills read the replica.
  std::vector<std::string> cold;
  for (int i = 0; i < 40; ++i) cold.push_back(new_user("cold" + std::to_string(i)));
  REQUIRE(eventually([&] { return on_replica(cold.back()); }));
  REQUIRE(eventually([&] { return replica_up(d); }));
  // Their INSERTs were invalidations too: wait until those are older than the replica.
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  long long primary_before = s.query_count("replica_marker"), replica_before = replica_count("replica_marker");
  for (const auto& u : cold) CHECK(d.get(target(u)).status == 200);
  long long on_primary = s.query_count("replica_marker") - primary_before;
  long long on_replica = replica_count("replica_marker") - replica_before;
  INFO("primary " << on_primary << ", replica " << on_replica);
  CHECK(on_replica >= 30);
  CHECK(on_replica > on_primary);
  CHECK(metric_sample(d.get("/metrics").body, "sidecache_pg_fills_total{target=\"replica0\"} ") >= 30);
}

TEST_CASE("replica killed under load: no read fails, fills move to the primary, and /readyz says the replica is down") {
  Services& s = Services::get();
  Daemon d(with_replica());
  REQUIRE(eventually([&] { return replica_up(d); }));
  // Cold keys all the time: random users (404s are answers, not failures).
  std::mt19937_64 rng(42);
  std::vector<std::string> targets;
  for (int i = 0; i < 20000; ++i) {
    char id[40];
    std::snprintf(id, sizeof id, "%08x-0000-4000-8000-%012llx", static_cast<unsigned>(rng() & 0xffffffff),
                  static_cast<unsigned long long>(rng() & 0xffffffffffffULL));
    targets.push_back(target(id));
  }
  std::map<int, int> by_status;
  {
    Load load(d, targets, 8);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    s.stop_replica(/*immediate=*/true);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    by_status = load.stop();
  }
  INFO(dump(by_status) << d.log().substr(0, 3000));
  CHECK(by_status.size() == 1);
  CHECK(by_status[404] > 100);
  CHECK(eventually([&] { return d.get("/readyz").body.find("\"state\":\"down\"") != std::string::npos; }));
  CHECK(d.get("/readyz").status == 200);  // a replica never decides readiness
  s.replica_port();                        // back for the rest of the binary
  CHECK(eventually([&] { return replica_up(d); }, 200));
}

TEST_CASE("every invalidation reads the primary's WAL position first, and the reads are counted") {
  Daemon d(with_replica());
  REQUIRE(eventually([&] { return replica_up(d); }));
  auto reads = [&] { return metric_sample(d.get("/metrics").body, "sidecache_pg_wal_position_reads_total "); };
  double before = reads();
  REQUIRE(before >= 0);
  auto answers = all_at_once(100, [&](int i) {
    char id[40];
    std::snprintf(id, sizeof id, "00000000-0000-4000-8000-%012d", i);
    return http_request(d.port(), "DELETE", target(id));
  });
  for (const auto& a : answers) CHECK(a.status == 200);
  double used = reads() - before;
  INFO(used << " position reads for 100 invalidations");
  // Each invalidation read a position; how many shared one depends on how
  // the requests arrived (the unit test "wal clock: ..." shows the sharing
  // deterministically).
  CHECK(used >= 1);
  CHECK(used <= 100 + 20);  // at most one each, plus the samples (10 a second)
}

TEST_CASE("a replica further behind than replica_max_lag is not used, and fills read the primary") {
  Services& s = Services::get();
  Daemon d(with_replica("\n  replica_max_lag: 100ms"));
  std::string uid = new_user("lagging");
  // Writes keep coming; the replica applies them 300 ms late.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      s.sql("UPDATE users SET email = 'lag" + std::to_string(i) + "@test.example' WHERE id = '" + uid + "'");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  bool lagging = eventually([&] { return d.get("/readyz").body.find("\"state\":\"lagging\"") != std::string::npos; });
  // The lag is sampled 10 times a second and swings around the 300 ms
  // delay as the writer's updates come (slower under a sanitizer): one
  // scrape may catch it at 0.1 s while the replica is still held unusable.
  std::string m;
  CHECK(eventually([&] {
    m = d.get("/metrics").body;
    return metric_sample(m, "sidecache_pg_replica_lag_seconds{replica=\"replica0\"} ") > 0.1;
  }));
  CHECK(metric_sample(m, "sidecache_pg_replica_usable{replica=\"replica0\"} ") == 0);
  long long replica_before = replica_count("replica_marker");
  std::vector<std::string> cold;
  for (int i = 0; i < 10; ++i) {
    char id[40];
    std::snprintf(id, sizeof id, "00000000-1111-4000-8000-%012d", i);
    cold.push_back(id);
  }
  for (const auto& u : cold) CHECK(d.get(target(u)).status == 404);
  long long on_replica = replica_count("replica_marker") - replica_before;
  stop = true;
  writer.join();
  CHECK(lagging);
  CHECK(on_replica == 0);
  CHECK(d.log().find("further behind than postgres.replica_max_lag") != std::string::npos);
}

TEST_CASE("a replica that cancels a fill for a recovery conflict: the fill is run again on the primary") {
  Services& s = Services::get();
  s.sql("DROP TABLE IF EXISTS conflict_probe");
  s.sql("CREATE TABLE conflict_probe (id int)");
  s.sql("INSERT INTO conflict_probe VALUES (1)");
  Daemon::Options o = with_replica();
  o.statement_timeout = "10s";
  o.extra_entities.emplace_back("conflict_probe.yaml",
                                "name: conflict_probe\nscope: global\nparams: { n: int }\nresult: row\n"
                                "sql: SELECT :n::int AS n, (SELECT count(*) FROM conflict_probe, pg_sleep(2)) AS c\n");
  Daemon d(o);
  REQUIRE(eventually([&] { return replica_up(d); }));
  REQUIRE(eventually([&] {
    try {
      return s.replica_sql("SELECT count(*) FROM conflict_probe") == "1";
    } catch (const std::exception&) {
      return false;  // not replayed yet
    }
  }));
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // the CREATE's invalidations (none) and WAL are replayed
  Response r;
  std::thread reader([&] { r = d.get("/v1/entities/conflict_probe?n=1"); });
  // Once the replica runs the fill, take a lock its replay must wait for:
  // the standby cancels the query (max_standby_streaming_delay 100ms).
  REQUIRE(eventually([&] {
    return s.replica_sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%conflict_probe, pg_sleep%' AND "
                         "state = 'active' AND pid <> pg_backend_pid()") == "1";
  }));
  s.sql("ALTER TABLE conflict_probe ADD COLUMN extra int");
  reader.join();
  INFO(r.body << d.log().substr(0, 3000));
  CHECK(r.status == 200);
  CHECK(metric_sample(d.get("/metrics").body, "sidecache_pg_replica_fallbacks_total{reason=\"conflict\",replica=\"replica0\"} ") == 1);
  s.sql("DROP TABLE conflict_probe");
}

TEST_CASE("check --connect checks each replica: one in recovery is ok, a primary listed as a replica is refused") {
  Services& s = Services::get();
  Daemon d(with_replica());
  auto [ok_rc, ok_out] = run_command({"env", "-u", "SIDECACHE_POSTGRES_DSN", sidecache_binary(), "check", "--connect",
                                      "--config", d.config_path()});
  INFO(ok_out);
  CHECK(ok_rc == 0);
  CHECK(ok_out.find("postgres.replicas[0] host=127.0.0.1") != std::string::npos);
  Daemon::Options wrong = with_replica();
  wrong.postgres_extra = "\n  replicas: [\"" + s.replica_dsn() + "\", \"" + s.dsn() + "\"]";
  wrong.wait_ready = true;
  Daemon w(wrong);
  auto [rc, out] = run_command({"env", "-u", "SIDECACHE_POSTGRES_DSN", sidecache_binary(), "check", "--connect",
                                "--config", w.config_path()});
  INFO(out);
  CHECK(rc != 0);
  CHECK(out.find("postgres.replicas[1]") != std::string::npos);
  CHECK(out.find("not in recovery") != std::string::npos);
  // The daemon itself does not use it, and says why.
  CHECK(eventually([&] { return w.get("/readyz").body.find("\"state\":\"not-a-replica\"") != std::string::npos; }));
  CHECK(w.log().find("is not in recovery") != std::string::npos);
}

TEST_CASE("an idle primary whose WAL sits at a segment boundary does not make the replica look behind") {
  Services& s = Services::get();
  std::string uid = new_user("boundary");
  Daemon d(with_replica());
  REQUIRE(eventually([&] { return replica_up(d) && on_replica(uid); }));
  auto fills = [&] { return metric_sample(d.get("/metrics").body, "sidecache_pg_fills_total{target=\"replica0\"} "); };
  auto behind = [&] {
    return std::max(0.0, metric_sample(d.get("/metrics").body,
                                       "sidecache_pg_replica_fallbacks_total{reason=\"behind\",replica=\"replica0\"} "));
  };
  auto position = [&] { return s.sql("SELECT pg_current_wal_insert_lsn()"); };
  // The next record would start after the new segment's 40-byte header:
  // pg_current_wal_insert_lsn() says so, while the replica stops at the
  // boundary itself. The test needs nothing else to write WAL meanwhile; a
  // server process may (autovacuum, a checkpoint), and then the replica is
  // rightly behind: that attempt does not count, and the test tries again.
  bool quiet = false;
  for (int attempt = 0; attempt < 5 && !quiet; ++attempt) {
    s.sql("SELECT pg_switch_wal()");
    std::string at_switch = position();
    std::this_thread::sleep_for(std::chrono::milliseconds(600));  // the switch is replayed (300 ms late)
    double before = fills(), behind_before = behind();
    REQUIRE(http_request(d.port(), "DELETE", target(uid)).status == 200);
    CHECK(d.get(target(uid)).status == 200);
    if (position() != at_switch) continue;  // something wrote: not the idle boundary this test is about
    quiet = true;
    CHECK(fills() == before + 1);  // the replica had replayed the invalidation's position
    CHECK(behind() == behind_before);
  }
  REQUIRE(quiet);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  auto ready = json::parse(d.get("/readyz").body);
  auto& rep = ready.at("postgres").at("replicas").at(0);
  INFO(json::serialize(rep));
  CHECK(rep.at("state").as_string() == "up");
  CHECK(rep.at("lag_ms").as_int64() < 1000);
}

TEST_CASE("a fill that waits for the replica and sees it catch up reads the replica, and the wait is counted") {
  Services& s = Services::get();
  // Long enough for the replica's 300 ms apply delay.
  Daemon d(with_replica("\n  replica_wait: 2s"));
  REQUIRE(eventually([&] { return replica_up(d); }));
  std::string uid = new_user("wait");
  REQUIRE(eventually([&] { return on_replica(uid); }));
  REQUIRE(name_of(d.get(target(uid))) == "wait");
  const std::string caught_up = "sidecache_pg_replica_waits_total{outcome=\"caught_up\",replica=\"replica0\"} ";
  double waits_before = std::max(0.0, metric_sample(d.get("/metrics").body, caught_up));
  long long replica_before = replica_count("replica_marker");
  s.sql("UPDATE users SET display_name = 'waited' WHERE id = '" + uid + "'");
  REQUIRE(http_request(d.port(), "DELETE", target(uid)).status == 200);
  // The replica replays the update about 300 ms from now; the fill waits for it.
  CHECK(name_of(d.get(target(uid))) == "waited");
  CHECK(replica_count("replica_marker") > replica_before);
  CHECK(metric_sample(d.get("/metrics").body, caught_up) >= waits_before + 1);
}

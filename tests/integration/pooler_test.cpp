// PostgreSQL behind PgBouncer in transaction mode (default_pool_size 2), the
// way most fleets run it: fills without named statements, the LISTEN session
// kept off the pooler, and a check that says when it is not.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "harness.hpp"

using namespace sidecache::it;

namespace {

const std::string kOrg = "99999999-0000-4000-8000-000000000013";

// Eight entities whose statements differ, so the pooler sees eight names.
std::vector<std::pair<std::string, std::string>> eight_entities() {
  std::vector<std::pair<std::string, std::string>> out;
  for (int k = 0; k < 8; ++k)
    out.emplace_back("pooled_" + std::to_string(k) + ".yaml",
                     "name: pooled_" + std::to_string(k) +
                         "\nparams: { org_id: uuid, user_id: uuid }\nresult: row\nsql: SELECT id, email, " +
                         std::to_string(k) + " AS k FROM users WHERE org_id = :org_id AND id = :user_id\n");
  return out;
}

// 250 users of a fresh org: with eight entities, 2,000 keys never read.
std::vector<std::string> fresh_users(int n) {
  Services& s = Services::get();
  s.sql("INSERT INTO orgs (id, name) VALUES ('" + kOrg + "', 'pooled') ON CONFLICT DO NOTHING");
  s.sql("DELETE FROM users WHERE org_id = '" + kOrg + "'");
  s.sql("INSERT INTO users (id, org_id, email, display_name) SELECT gen_random_uuid(), '" + kOrg +
        "', 'pooled' || g || '@test.example', 'p' || g FROM generate_series(1, " + std::to_string(n) + ") g");
  std::vector<std::string> ids;
  for (int i = 1; i <= n; ++i)
    ids.push_back(s.sql("SELECT id FROM users WHERE org_id = '" + kOrg + "' AND email = 'pooled" + std::to_string(i) +
                        "@test.example'"));
  return ids;
}

// 2,000 cold reads from 50 clients; returns the answers by status.
std::map<int, int> cold_reads(const Daemon& d, const std::vector<std::string>& users) {
  std::vector<std::string> targets;
  for (int k = 0; k < 8; ++k)
    for (const auto& u : users)
      targets.push_back("/v1/entities/pooled_" + std::to_string(k) + "?org_id=" + kOrg + "&user_id=" + u);
  std::atomic<std::size_t> next{0};
  std::mutex mu;
  std::map<int, int> by_status;
  std::vector<std::thread> clients;
  for (int c = 0; c < 50; ++c)
    clients.emplace_back([&] {
      for (std::size_t i; (i = next++) < targets.size();) {
        auto r = d.get(targets[i]);
        std::lock_guard lock(mu);
        ++by_status[r.status];
      }
    });
  for (auto& t : clients) t.join();
  return by_status;
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// `check --connect` on the daemon's own file (the environment's DSN, which
// the test runner may export, must not override it).
std::pair<int, std::string> check_connect(const Daemon& d) {
  return run_command({"env", "-u", "SIDECACHE_POSTGRES_DSN", "-u", "SIDECACHE_POSTGRES_LISTEN_DSN", sidecache_binary(),
                      "check", "--connect", "--config", d.config_path()});
}

// A daemon behind the shared pgbouncer, LISTEN direct, with the eight entities.
Daemon::Options behind_pgbouncer(const std::string& postgres_extra) {
  Services& s = Services::get();
  Daemon::Options o;
  o.pg_dsn = s.pgbouncer_dsn();
  o.postgres_extra = postgres_extra + "\n  listen_dsn: \"" + s.dsn() + "\"";
  o.extra_entities = eight_entities();
  return o;
}

const char* kPoolerLine = "set postgres.prepared: off";

}  // namespace

TEST_CASE("behind pgbouncer in transaction mode with prepared: off, 2,000 cold reads from 50 clients all succeed") {
  auto users = fresh_users(250);
  Daemon d(behind_pgbouncer("\n  prepared: off"));
  auto by_status = cold_reads(d, users);
  INFO(dump(by_status) << d.log().substr(0, 4000));
  CHECK(by_status[200] == 2000);
  CHECK(d.log().find(kPoolerLine) == std::string::npos);
  CHECK(d.log().find("42P05") == std::string::npos);
  // Each key was filled once and is a hit now.
  auto again = d.get("/v1/entities/pooled_3?org_id=" + kOrg + "&user_id=" + users[7]);
  CHECK(again.header("cache-status") == "sidecache; hit");
}

TEST_CASE("behind pgbouncer with prepared: on, the clash is logged once, naming the setting, and no read fails") {
  auto users = fresh_users(250);
  Daemon d(behind_pgbouncer(""));
  auto by_status = cold_reads(d, users);
  INFO(dump(by_status) << d.log().substr(0, 4000));
  CHECK(by_status[200] == 2000);
  CHECK(occurrences(d.log(), kPoolerLine) == 1);
}

TEST_CASE("a LISTEN through pgbouncer is found deaf: the daemon logs what to set and /readyz says not-delivering, "
          "while listen_dsn to the primary delivers") {
  Services& s = Services::get();
  Daemon::Options deaf;
  deaf.pg_dsn = s.pgbouncer_dsn();
  deaf.postgres_extra = "\n  prepared: off";
  Daemon d(deaf);
  CHECK(eventually([&] { return d.get("/readyz").body.find("not-delivering") != std::string::npos; }));
  CHECK(d.log().find("set postgres.listen_dsn to a direct connection") != std::string::npos);
  auto [rc, out] = check_connect(d);
  CHECK(rc != 0);
  CHECK(out.find("postgres.dsn: LISTEN receives nothing") != std::string::npos);

  Daemon::Options direct = deaf;
  direct.postgres_extra += "\n  listen_dsn: \"" + s.dsn() + "\"";
  Daemon ok(direct);
  CHECK(eventually([&] { return ok.get("/readyz").body.find("\"invalidation_listener\":{\"state\":\"up\"") != std::string::npos; }));
  CHECK(ok.log().find("set postgres.listen_dsn") == std::string::npos);
  auto [ok_rc, ok_out] = check_connect(ok);
  INFO(ok_out);
  CHECK(ok_rc == 0);
  // A write reaches the cache through the direct LISTEN.
  Triggers triggers(ok);
  fresh_users(0);
  std::string uid = s.sql("INSERT INTO users (id, org_id, email, display_name) VALUES (gen_random_uuid(), '" + kOrg +
                          "', 'listen-direct@test.example', 'before') RETURNING id");
  std::string t = "/v1/entities/user?org_id=" + kOrg + "&user_id=" + uid;
  CHECK(eventually([&] { return ok.get(t).header("cache-status") == "sidecache; hit"; }));
  s.sql("UPDATE users SET display_name = 'after' WHERE id = '" + uid + "'");
  CHECK(eventually([&] { return ok.get(t).body.find("\"after\"") != std::string::npos; }, 20));
}

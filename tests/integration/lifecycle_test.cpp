// SIGHUP reload and SIGTERM drain, under concurrent load.
#include <catch2/catch.hpp>

#include <boost/json.hpp>
#include <signal.h>
#include <unistd.h>
#include <atomic>
#include <fstream>
#include <mutex>
#include <sstream>
#include <filesystem>
#include <thread>

#include "harness.hpp"

using namespace sidecache::it;
namespace json = boost::json;

namespace {
const std::string kOrg1 = "11111111-1111-1111-1111-111111111111";
const std::string kUidA = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa";

long long generation(const Daemon& d) { return json::parse(d.get("/readyz").body).at("config_generation").as_int64(); }

}  // namespace

TEST_CASE("SIGHUP reloads entities under load with no failed request, a bad config is refused and the old one serves") {
  Daemon d;
  std::vector<std::string> targets{"/v1/entities/user?org_id=" + kOrg1 + "&user_id=" + kUidA,
                                   "/v1/entities/feature_flags", "/v1/entities/type_zoo?id=1"};
  Load load(d, targets, 4);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  REQUIRE(generation(d) == 1);
  std::string probe = "/v1/entities/reload_probe?org_id=" + kOrg1;
  REQUIRE(d.get(probe).status == 404);  // unknown_entity

  std::ofstream(d.dir() + "/entities/reload_probe.yaml") << "name: reload_probe\nresult: rows\n"
                                                            "sql: SELECT name FROM orgs WHERE id = :org_id\nttl: 1m\n";
  // A setting that cannot change on reload: named in a warning, kept.
  {
    std::ifstream in(d.config_path());
    std::stringstream ss;
    ss << in.rdbuf();
    std::string cfg = ss.str();
    cfg.replace(cfg.find("workers: 2"), 10, "workers: 3");
    std::ofstream(d.config_path()) << cfg;
  }
  ::kill(d.pid(), SIGHUP);
  REQUIRE(eventually([&] { return generation(d) == 2; }));
  auto r = d.get(probe);
  CHECK(r.status == 200);
  CHECK(r.body.find("Acme Corp") != std::string::npos);
  CHECK(d.log().find("workers changed but cannot change without a restart") != std::string::npos);

  // A broken entity file: the reload is refused with file and line, and the
  // running configuration keeps serving.
  std::ofstream(d.dir() + "/entities/broken.yaml") << "name: broken\nsql: SELECT :nope\n";
  ::kill(d.pid(), SIGHUP);
  REQUIRE(eventually([&] { return d.log().find("reload refused") != std::string::npos; }));
  CHECK(d.log().find("broken.yaml:2") != std::string::npos);
  CHECK(generation(d) == 2);
  CHECK(d.get(probe).status == 200);

  auto counts = load.stop();
  INFO(dump(counts));
  CHECK(counts.size() == 1);
  CHECK(counts[200] > 0);
}

TEST_CASE("SIGTERM under load: in-flight requests complete, no answer is an error, exit 0") {
  Daemon d;
  std::vector<std::string> targets{"/v1/entities/user?org_id=" + kOrg1 + "&user_id=" + kUidA,
                                   "/v1/entities/feature_flags"};
  Load load(d, targets, 4);
  Response slow;
  std::thread slow_client([&] { slow = d.get("/v1/entities/sleepy?ms=700"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int rc = d.terminate(std::chrono::seconds(15));
  slow_client.join();
  auto counts = load.stop();
  INFO(dump(counts));
  CHECK(rc == 0);
  CHECK(slow.status == 200);
  // Every answer received is a 200; after the listener closed, connections
  // are refused (status 0: nothing received).
  for (auto [status, n] : counts) CHECK((status == 200 || status == 0));
  CHECK(counts[200] > 0);
}

TEST_CASE("at start the pool opens every connection and prepares every entity's statement, before any request") {
  Services& s = Services::get();
  // Sessions opened from now on: pgbouncer's server connections, kept from
  // earlier tests, carry the application_name our SET gave them.
  std::string since = s.sql("SELECT clock_timestamp()::text");
  Daemon d;  // pool_size 4
  auto entities = json::parse(d.get("/readyz").body).at("entities").as_int64();
  REQUIRE(entities > 0);
  const std::string prepared = " statements prepared";
  // Connections whose line says they prepared every entity's statement (and
  // the batch forms' statements: at least one per entity).
  auto count = [&](const std::string& text, bool all_entities) {
    std::size_t n = 0;
    std::string log = d.log();
    for (auto pos = log.find(text); pos != std::string::npos; pos = log.find(text, pos + 1)) {
      auto start = log.rfind(", ", pos);
      long k = start == std::string::npos ? 0 : std::strtol(log.c_str() + start + 2, nullptr, 10);
      if (!all_entities || k >= entities) ++n;
    }
    return n;
  };
  // Only /readyz has been asked (its ping needs one connection); the other
  // three are open all the same, and every connection prepared all entities.
  CHECK(eventually([&] { return count(prepared, true) == 4; }));
  INFO(d.log());
  CHECK(count(prepared, false) == 4);
  // (Polled: the backends of an earlier test's daemon may take a moment to go.)
  std::string open;
  CHECK(eventually([&] {
    open = s.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sidecache' AND backend_start >= '" +
                 since + "'");
    return open == "4";
  }));
  INFO("connections open: " << open);
}

TEST_CASE("a listen address in use is refused with the reason and what to set, and no source path") {
  Daemon d;
  // A second process with the same configuration: same address.
  auto [rc, out] = run_command({sidecache_binary(), "--config", d.config_path()});
  INFO(out);
  CHECK(rc == 1);
  CHECK(out.find("Address already in use") != std::string::npos);
  CHECK(out.find("set listen (or SIDECACHE_LISTEN)") != std::string::npos);
  CHECK(out.find("/usr/include") == std::string::npos);
  CHECK(out.find("in function") == std::string::npos);
}

TEST_CASE("an entity whose SQL does not prepare is reported at start, once, in the log and in /readyz") {
  Daemon::Options o;
  o.extra_entities = {{"typo.yaml", "name: typo\nscope: global\nresult: rows\nsql: |\n  SELECT id,\n    nme FROM users\n"}};
  Daemon d(o);
  auto ready = d.get("/readyz");
  INFO(d.log());
  INFO(ready.body);
  auto errors = boost::json::parse(ready.body).at("entity_errors").as_array();
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].at("entity").as_string() == "typo");
  std::string log = d.log();
  const std::string line = "entity 'typo' (" + d.dir() + "/entities/typo.yaml): its SQL does not prepare [42703]";
  auto first = log.find(line);
  REQUIRE(first != std::string::npos);
  CHECK(log.find(line, first + 1) == std::string::npos);  // once, though every pool connection prepares it
  std::string reported = log.substr(first, log.find('\n', first) - first);
  CHECK(reported.find("column \"nme\" does not exist") != std::string::npos);
  CHECK(reported.find("(at line 2 of the entity's SQL)") != std::string::npos);
  // A read: 500, a one-line message that names the entity's line.
  auto r = d.get("/v1/entities/typo");
  CHECK(r.status == 500);
  std::string message(boost::json::parse(r.body).at("message").as_string());
  CHECK(message.find('\n') == std::string::npos);
  CHECK(message.find("(at line 2 of the entity's SQL)") != std::string::npos);
}

TEST_CASE("an entity added by a reload whose SQL does not prepare is reported at the reload, not at its first request") {
  Daemon d;
  std::ofstream(d.dir() + "/entities/typo2.yaml") << "name: typo2\nscope: global\nresult: rows\nsql: SELECT nme FROM users\n";
  ::kill(d.pid(), SIGHUP);
  bool reported = false;
  std::string body;
  for (int i = 0; i < 100 && !reported; ++i) {
    body = d.get("/readyz").body;
    reported = body.find("\"entity\":\"typo2\"") != std::string::npos;
    if (!reported) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  INFO(body);
  INFO(d.log());
  CHECK(reported);
  CHECK(d.log().find("entity 'typo2' (" + d.dir() + "/entities/typo2.yaml): its SQL does not prepare [42703]") !=
        std::string::npos);
  // Fixed and reloaded: prepared, and no longer reported.
  std::ofstream(d.dir() + "/entities/typo2.yaml") << "name: typo2\nscope: global\nresult: rows\nsql: SELECT email FROM users\n";
  ::kill(d.pid(), SIGHUP);
  bool cleared = false;
  for (int i = 0; i < 100 && !cleared; ++i) {
    cleared = d.get("/readyz").body.find("typo2") == std::string::npos;
    if (!cleared) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(cleared);
}

TEST_CASE("a Redis Cluster node given as the standalone Redis is refused at start, before any port is bound, saying "
          "what to set, and check --connect says the same") {
  // A cluster-enabled redis-server of its own (no slots: INFO says cluster_enabled:1).
  std::string dir = std::filesystem::temp_directory_path() / ("sidecache-cluster-node-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  // Cluster mode also binds the bus port, port + 10000: both must be free.
  auto listened = [](int p) {
    int fd = connect_loopback(p);
    if (fd >= 0) ::close(fd);
    return fd >= 0;
  };
  int port = free_port();
  for (int tries = 0; tries < 100 && (port > 55000 || listened(port + 10000)); ++tries) port = free_port();
  auto [started, out] = run_command({"redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", "no", "--cluster-enabled", "yes", "--dir", dir, "--daemonize", "yes",
                                     "--pidfile", dir + "/redis.pid", "--logfile", dir + "/redis.log"});
  REQUIRE(started == 0);
  struct Cleanup {
    std::string dir;
    int port;
    ~Cleanup() {
      run_command({"redis-cli", "-p", std::to_string(port), "shutdown", "nosave"});
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{dir, port};
  bool up = eventually([&] { return run_command({"redis-cli", "-p", std::to_string(port), "ping"}).second.find("PONG") == 0; });
  INFO(run_command({"cat", dir + "/redis.log"}).second);
  REQUIRE(up);

  Daemon::Options o;
  o.redis_port = port;
  o.wait_ready = false;
  Daemon d(o);
  CHECK(eventually([&] { return d.log().find("Redis Cluster node") != std::string::npos; }));
  INFO(d.log());
  CHECK(d.log().find("Set redis.mode: cluster") != std::string::npos);
  CHECK(d.log().find("listening on") == std::string::npos);
  CHECK(d.wait_exit() == 2);  // on its own: a SIGTERM could overtake a slow exit
  auto [rc, check] = run_command({"env", "-u", "SIDECACHE_REDIS_URL", sidecache_binary(), "check", "--connect", "--config",
                                  d.config_path()});
  INFO(check);
  CHECK(rc == 2);
  CHECK(check.find("cluster_enabled:1") != std::string::npos);
}

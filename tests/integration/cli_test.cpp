// Logs, request ids and the command line, against the real servers.
#include <catch2/catch.hpp>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <thread>

#include "harness.hpp"

using namespace sidecache::it;
namespace fs = std::filesystem;

namespace {
const std::string kOrg1 = "11111111-1111-1111-1111-111111111111";
const std::string kUid = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa";
}  // namespace

TEST_CASE("X-Request-Id is taken from the caller or generated, echoed, and on the access log line") {
  Daemon::Options o;
  o.log_level = "info";
  o.extra_main = "access_log: true\nlog_format: json\n";
  Daemon d(o);
  auto given = d.get("/v1/entities/type_zoo?id=1", {"X-Request-Id: trace-abc.123"});
  CHECK(given.header("x-request-id") == "trace-abc.123");
  auto made = d.get("/v1/entities/type_zoo?id=1");
  CHECK(made.header("x-request-id").size() == 16);
  auto hostile = d.get("/healthz", {"X-Request-Id: bad\"id{}"});
  CHECK(hostile.header("x-request-id") != "bad\"id{}");  // replaced, never echoed raw
  // Every line is a JSON object; the access lines carry the ids.
  std::istringstream lines(d.log());
  std::string line;
  int objects = 0;
  bool saw_given = false, saw_made = false;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    auto v = boost::json::parse(line);  // throws if a line is not JSON
    ++objects;
    std::string msg(v.at("msg").as_string());
    if (msg.find("request_id=trace-abc.123") != std::string::npos) saw_given = true;
    if (msg.find("request_id=" + made.header("x-request-id")) != std::string::npos) saw_made = true;
  }
  CHECK(objects > 3);
  CHECK(saw_given);
  CHECK(saw_made);
}

TEST_CASE("sidecache key prints the key a GET uses") {
  Services& s = Services::get();
  Daemon d;
  REQUIRE(d.get("/v1/entities/user?org_id=" + kOrg1 + "&user_id=" + kUid).status == 200);
  auto [rc, out] = run_command({sidecache_binary(), "key", "--config", d.config_path(), "user", "org_id=" + kOrg1,
                                "user_id=" + std::string("AAAAAAAA-AAAA-AAAA-AAAA-AAAAAAAAAAAA")});
  REQUIRE(rc == 0);
  std::string key = out.substr(0, out.find('\n'));
  CHECK(key.rfind(d.prefix() + "t:" + kOrg1 + ":user:", 0) == 0);
  CHECK(s.redis_cli("EXISTS " + key) == "1");
  auto [bad_rc, bad_out] = run_command({sidecache_binary(), "key", "--config", d.config_path(), "user", "org_id=x"});
  CHECK(bad_rc != 0);
  CHECK(bad_out.find("org_id") != std::string::npos);
}

TEST_CASE("a bare file name after --config (in the current folder) loads, and the paths in it stay relative to that folder") {
  Daemon d;
  // As an operator types it: cd to the folder, name the file.
  auto [rc, out] = run_command({"/bin/sh", "-c", "cd '" + d.dir() + "' && '" + sidecache_binary() +
                                                     "' check --config sidecache.yaml"});
  INFO(out);
  CHECK(rc == 0);
  CHECK(out.find("filesystem error") == std::string::npos);
}

TEST_CASE("check --connect reaches both servers and catches SQL that does not prepare") {
  Daemon d;
  auto [ok_rc, ok_out] = run_command({sidecache_binary(), "check", "--connect", "--config", d.config_path()});
  INFO(ok_out);
  CHECK(ok_rc == 0);
  CHECK(ok_out.find("postgres: ok") != std::string::npos);
  std::ofstream(d.dir() + "/entities/typo.yaml") << "name: typo\nscope: global\nresult: rows\nsql: SELEC 1 AS one\n";
  auto [bad_rc, bad_out] = run_command({sidecache_binary(), "check", "--connect", "--config", d.config_path()});
  INFO(bad_out);
  CHECK(bad_rc != 0);
  CHECK(bad_out.find("typo.yaml: entity 'typo': its SQL does not prepare") != std::string::npos);
  // A tenant param that is only selected, never filtered by: PostgreSQL's plan says so.
  std::ofstream(d.dir() + "/entities/typo.yaml")
      << "name: leaky\nparams: { user_id: uuid }\nsql: SELECT :org_id::text AS t, email FROM users WHERE id = :user_id\n";
  auto [leak_rc, leak_out] = run_command({sidecache_binary(), "check", "--connect", "--config", d.config_path()});
  INFO(leak_out);
  CHECK(leak_rc != 0);
  CHECK(leak_out.find("entity 'leaky': the tenant param :org_id filters no rows") != std::string::npos);
  std::ofstream(d.dir() + "/entities/typo.yaml")
      << "name: joined\nparams: { user_id: uuid }\nsql: SELECT u.email FROM users u JOIN users v ON v.id = u.id AND "
         "v.org_id = :org_id WHERE u.id = :user_id\n";
  CHECK(run_command({sidecache_binary(), "check", "--connect", "--config", d.config_path()}).first == 0);
  // Without --connect, the SQL is not checked against the database.
  CHECK(run_command({sidecache_binary(), "check", "--config", d.config_path()}).first == 0);
}

TEST_CASE("sidecache health asks the running daemon and fails when it is gone") {
  Daemon d;
  auto [rc, out] = run_command({sidecache_binary(), "health", "--config", d.config_path()});
  INFO(out);
  CHECK(rc == 0);
  CHECK(out.find("ok") != std::string::npos);
  REQUIRE(d.terminate() == 0);
  auto [gone_rc, gone_out] = run_command({sidecache_binary(), "health", "--config", d.config_path()});
  INFO(gone_out);
  CHECK(gone_rc == 1);
  CHECK(gone_out.find("cannot connect") != std::string::npos);
}

TEST_CASE("sidecache health reaches a daemon that listens on IPv6 loopback") {
  Daemon::Options o;
  o.listen = "[::1]:" + std::to_string(free_port());
  o.wait_ready = false;  // the harness polls over IPv4; health itself is the poll here
  Daemon d(o);
  int rc = 1;
  std::string out;
  for (int i = 0; i < 100 && rc != 0; ++i) {
    std::tie(rc, out) = run_command({sidecache_binary(), "health", "--config", d.config_path()});
    if (rc != 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  INFO(out);
  INFO(d.log());
  CHECK(rc == 0);
  CHECK(out.find("ok") != std::string::npos);
}

TEST_CASE("--help names every command, the signals and the exit codes") {
  auto [rc, out] = run_command({sidecache_binary(), "--help"});
  CHECK(rc == 0);
  for (const char* want : {"check --config", "--connect", "key --config", "triggers --config", "health --config",
                           "SIGHUP", "SIGTERM", "Exit status", "SIDECACHE_POSTGRES_DSN"})
    CHECK(out.find(want) != std::string::npos);
  auto [vrc, vout] = run_command({sidecache_binary(), "--version"});
  CHECK(vrc == 0);
  CHECK(vout.rfind("sidecache ", 0) == 0);
}

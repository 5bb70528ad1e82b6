// The HTTP surface: errors over the wire, protocol limits, keep-alive,
// unix sockets, start-up refusals and graceful shutdown.
#include <catch2/catch.hpp>

#include <boost/json.hpp>
#include <sys/stat.h>
#include <filesystem>
#include <fstream>
#include <thread>

#include "harness.hpp"

using namespace sidecache::it;
namespace json = boost::json;

namespace {
const std::string kOrg1 = "11111111-1111-1111-1111-111111111111";
const std::string kUidA = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa";

json::object body_of(const Response& r) { return json::parse(r.body).as_object(); }
}  // namespace

TEST_CASE("400, 404 and 405 over the wire, as JSON naming the problem") {
  Daemon d;
  struct Case { std::string method, target; int status; std::string error, param; };
  std::vector<Case> cases = {
      {"GET", "/v1/entities/user?user_id=" + kUidA, 400, "missing_param", "org_id"},
      {"GET", "/v1/entities/user?org_id=" + kOrg1, 400, "missing_param", "user_id"},
      {"GET", "/v1/entities/user?org_id=" + kOrg1 + "&user_id=" + kUidA + "&debug=1", 400, "unknown_param", "debug"},
      {"GET", "/v1/entities/user?org_id=not-a-uuid&user_id=" + kUidA, 400, "bad_param", "org_id"},
      {"GET", "/v1/entities/users_page?org_id=" + kOrg1 + "&page=one&page_size=10", 400, "bad_param", "page"},
      {"GET", "/v1/entities/search?org_id=" + kOrg1 + "&q=" + std::string(65, 'x'), 400, "bad_param", "q"},
      {"GET", "/v1/entities/feature_flags?org_id=" + kOrg1, 400, "unknown_param", "org_id"},
      {"GET", "/v1/entities/nope?org_id=" + kOrg1, 404, "unknown_entity", ""},
      {"GET", "/nowhere", 404, "no_route", ""},
      {"POST", "/v1/entities/user?org_id=" + kOrg1 + "&user_id=" + kUidA, 405, "method_not_allowed", ""},
      {"PUT", "/v1/entities", 405, "method_not_allowed", ""},
  };
  for (const auto& c : cases) {
    INFO(c.method << " " << c.target);
    auto r = http_request(d.port(), c.method, c.target);
    REQUIRE(r.status == c.status);
    CHECK(r.header("content-type") == "application/json");
    auto b = body_of(r);
    CHECK(b.at("error").as_string() == c.error);
    CHECK_FALSE(b.at("message").as_string().empty());
    if (!c.param.empty()) CHECK(b.at("param").as_string() == c.param);
    if (c.status == 405) CHECK(r.header("allow") == (c.target == "/v1/entities" ? "GET" : "GET, DELETE"));
  }
}

TEST_CASE("the entity list, healthz and readyz") {
  Daemon d;
  auto list = d.get("/v1/entities");
  REQUIRE(list.status == 200);
  auto entities = body_of(list).at("entities").as_array();
  bool found_user = false;
  for (const auto& e : entities) {
    if (e.at("name").as_string() != "user") continue;
    found_user = true;
    CHECK(e.at("scope").as_string() == "tenant");
    CHECK(e.at("result").as_string() == "row");
    CHECK(e.at("ttl").as_string() == "15m");
    CHECK(e.at("params").as_array().size() == 2);
  }
  CHECK(found_user);
  CHECK(d.get("/healthz").status == 200);
  auto ready = d.get("/readyz");
  CHECK(ready.status == 200);
  CHECK(body_of(ready).at("postgres").at("state").as_string() == "up");
  CHECK(body_of(ready).at("redis").at("state").as_string() == "up");
}

TEST_CASE("protocol limits: 431, 414, 413, smuggling guard, malformed requests") {
  Daemon d;
  auto big_header = raw_exchange(d.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n");
  CHECK(parse_response(big_header).value().status == 431);

  auto long_target = raw_exchange(d.port(), "GET /v1/entities/user?x=" + std::string(5000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(parse_response(long_target).value().status == 414);
  // A request line longer than all the header room together: still 414
  // (as nginx answers), not 431.
  auto huge_target = raw_exchange(d.port(), "GET /v1/entities/user?x=" + std::string(20000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(parse_response(huge_target).value().status == 414);
  // Many headers after a short line stay 431, however they are counted.
  std::string many = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 200; ++i) many += "X-H" + std::to_string(i) + ": " + std::string(60, 'h') + "\r\n";
  auto many_headers = raw_exchange(d.port(), many + "\r\n");
  CHECK(parse_response(many_headers).value().status == 431);

  auto big_body = raw_exchange(d.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n" + std::string(70000, 'b'));
  CHECK(parse_response(big_body).value().status == 413);

  auto both = raw_exchange(d.port(),
                           "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  CHECK(parse_response(both).value().status == 400);

  auto garbage = raw_exchange(d.port(), "HELLO\r\n\r\n");
  CHECK(parse_response(garbage).value().status == 400);
  // The server is still fine.
  CHECK(d.get("/healthz").status == 200);
}

TEST_CASE("HEAD is GET without the body, and an absolute-form target is served") {
  Daemon d;
  for (std::string path : {"/healthz", "/readyz", "/v1/entities"}) {
    auto got = d.get(path);
    auto head = raw_exchange(d.port(), "HEAD " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    INFO(path << ": " << head);
    CHECK(head.rfind("HTTP/1.1 200", 0) == 0);
    CHECK(head.find("Content-Length: " + std::to_string(got.body.size()) + "\r\n") != std::string::npos);
    CHECK(head.substr(head.find("\r\n\r\n") + 4).empty());  // no body
  }
  auto absolute = raw_exchange(d.port(), "GET http://localhost:" + std::to_string(d.port()) +
                                             "/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(parse_response(absolute).value().status == 200);
}

TEST_CASE("keep-alive: several requests on one connection, pipelined") {
  Daemon d;
  std::string req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string t = "/v1/entities/user?org_id=" + kOrg1 + "&user_id=" + kUidA;
  std::string all = raw_exchange(d.port(), req + "GET " + t + " HTTP/1.1\r\nHost: x\r\n\r\n" +
                                               "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::size_t count = 0, pos = 0;
  while ((pos = all.find("HTTP/1.1 200 OK", pos)) != std::string::npos) { ++count; ++pos; }
  CHECK(count == 3);
}

TEST_CASE("a client that stalls inside its headers is disconnected after the header timeout") {
  Daemon::Options o;
  o.extra_main = "http: { header_timeout: 300ms, idle_timeout: 300ms }\n";
  Daemon d(o);
  // Half a request and then silence: the server must close the connection
  // (we check who closed it, not how long it took).
  bool closed = false;
  std::string got = raw_exchange(d.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n", std::chrono::seconds(30), &closed);
  CHECK(closed);
  CHECK(got.find("200 OK") == std::string::npos);
  // An idle keep-alive connection is closed the same way.
  bool idle_closed = false;
  std::string idle = raw_exchange(d.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", std::chrono::seconds(30), &idle_closed);
  CHECK(idle_closed);
  CHECK(idle.find("200 OK") != std::string::npos);
  CHECK(d.get("/healthz").status == 200);
}

TEST_CASE("listening on a unix socket, created with mode 0660") {
  auto path = std::filesystem::temp_directory_path() / ("sidecache-it-" + std::to_string(::getpid()) + ".sock");
  Daemon::Options o;
  o.listen = "unix:" + path.string();
  Daemon d(o);
  struct stat st{};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0660);
  auto r = parse_response(raw_exchange_unix(path.string(), "GET /v1/entities/user?org_id=" + kOrg1 + "&user_id=" + kUidA +
                                                               " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(d.terminate() == 0);
  CHECK_FALSE(std::filesystem::exists(path));  // removed on shutdown
}

TEST_CASE("SIGTERM: in-flight requests finish, then exit 0") {
  Daemon d;
  Response slow;
  std::thread t([&] { slow = d.get("/v1/entities/sleepy?ms=600"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  int rc = d.terminate();
  t.join();
  CHECK(rc == 0);
  CHECK(slow.status == 200);
  CHECK(d.log().find("draining") != std::string::npos);
}

TEST_CASE("a bad config exits non-zero with file and line, before binding the port") {
  int port = free_port();
  auto dir = std::filesystem::temp_directory_path() / ("sidecache-badcfg-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "entities");
  std::ofstream(dir / "sidecache.yaml") << "listen: 127.0.0.1:" << port
                                        << "\npostgres: { dsn: \"host=127.0.0.1\" }\nentities_dir: entities\n";
  std::ofstream(dir / "entities" / "e.yaml") << "name: e\nparams: { id: int }\nsql: SELECT 1 WHERE :id = :other\nttl: 0s\n";
  auto [rc, out] = run_command({sidecache_binary(), "--config", (dir / "sidecache.yaml").string()});
  INFO(out);
  CHECK(rc != 0);
  CHECK(out.find("e.yaml:3") != std::string::npos);
  CHECK(out.find("the SQL uses :other but it is not declared") != std::string::npos);
  CHECK(out.find("e.yaml:4") != std::string::npos);
  CHECK(out.find("ttl must be greater than zero") != std::string::npos);
  // Nothing was bound: the port is still free for us.
  CHECK(raw_exchange(port, "GET / HTTP/1.1\r\n\r\n", std::chrono::milliseconds(200)).empty());
  auto [check_rc, check_out] = run_command({sidecache_binary(), "check", "--config", (dir / "sidecache.yaml").string()});
  CHECK(check_rc != 0);
  CHECK(check_out == out);
  std::filesystem::remove_all(dir);
}

// Redis over TLS against a real redis-server that speaks only TLS, with a CA
// and certificates made by openssl at test time: a verified server (by IP
// and by name) serves hits and carries L1's invalidation messages; a server
// certificate from another CA, or without the name asked for, is refused
// with a log line that says what to set while reads go to PostgreSQL; a
// server that asks for client certificates gets one.
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include "harness.hpp"
#include "tls_redis.hpp"

using namespace sidecache::it;
namespace json = boost::json;

namespace {
const std::string kOrg = "11111111-1111-1111-1111-111111111111";

std::string new_user(const std::string& name) { return insert_user(kOrg, name); }
std::string user(const std::string& uid) { return "/v1/entities/user?org_id=" + kOrg + "&user_id=" + uid; }
std::string name_of(const Response& r) {
  return std::string(json::parse(r.body).as_object().at("display_name").as_string());
}

// A daemon on `url` with the TLS settings `tls` (the inside of tls: { }).
Daemon::Options over_tls(const std::string& url, const std::string& tls, bool l1 = false) {
  Daemon::Options o;
  o.redis_url = url;
  o.redis_extra = ", tls: { " + tls + " }";
  if (l1) o.extra_main = "l1: { max_bytes: 8MiB, ttl: 60s }\n";
  return o;
}
std::string ca(const std::string& file) { return "ca_file: \"" + file + "\""; }

// Every read is answered from PostgreSQL (200, the row, nothing stored),
// and the log says why Redis was refused.
void reads_go_to_postgres(const Daemon& d, const std::string& uid, const std::string& name) {
  for (int i = 0; i < 3; ++i) {
    auto r = d.get(user(uid));
    REQUIRE(r.status == 200);
    CHECK(name_of(r) == name);
    CHECK(r.header("cache-status").find("fwd=miss") != std::string::npos);
  }
}
}  // namespace

TEST_CASE("redis over TLS: a verified server, reached by IP and by name, serves hits and carries L1's invalidations") {
  TlsRedis srv;
  const auto& f = TlsFiles::get();
  // Two pods of one deployment: one key prefix, one L1 channel.
  auto pod = [&](const std::string& host) {
    Daemon::Options o = over_tls(srv.url(host), ca(f.ca), true);
    o.key_prefix = "tls" + std::to_string(::getpid()) + ":";
    return o;
  };
  Daemon a(pod("localhost"));  // by name: resolved, the DNS name checked
  Daemon b(pod("127.0.0.1"));  // by address: the IP name checked
  std::string uid = new_user("tls-one");
  auto t = user(uid);

  auto first = a.get(t);
  REQUIRE(first.status == 200);
  CHECK(first.header("cache-status") == "sidecache; fwd=miss; stored");
  // b has never read it: its copy comes from Redis, over TLS.
  auto second = b.get(t);
  CHECK(second.header("cache-status") == "sidecache; hit");
  CHECK(second.body == first.body);
  CHECK(b.get(t).header("cache-status") == "sidecache; hit; detail=l1");
  CHECK(std::stoi(srv.cli("dbsize")) > 0);
  auto ready = json::parse(b.get("/readyz").body).as_object().at("redis").as_object();
  CHECK(ready.at("state") == "up");
  CHECK(ready.at("tls") == true);
  CHECK(a.log().find("over TLS") != std::string::npos);

  // An invalidation through a reaches b's L1 over the TLS subscription.
  Services::get().sql("UPDATE users SET display_name = 'tls-two' WHERE id = '" + uid + "'");
  REQUIRE(http_request(a.port(), "DELETE", t).status == 200);
  CHECK(eventually([&] { return name_of(b.get(t)) == "tls-two"; }));
  CHECK(name_of(a.get(t)) == "tls-two");

  auto [rc, out] = run_command({"env", "-u", "SIDECACHE_REDIS_URL", sidecache_binary(), "check", "--connect", "--config", a.config_path()});
  INFO(out);
  CHECK(out.find("redis rediss://localhost:" + std::to_string(srv.port()) + "/0: ok, over TLS") != std::string::npos);
}

TEST_CASE("redis over TLS: a server certificate from another CA, or without the name asked for, is refused with a "
          "log line that says what to set, and reads go to PostgreSQL") {
  TlsRedis srv;
  const auto& f = TlsFiles::get();
  std::string uid = new_user("tls-refused");
  struct Case {
    const char* what;
    std::string tls;
    std::string says;
    std::string fix;
  };
  for (const Case& c : {Case{"another CA", ca(f.other_ca), "certificate was refused", "set redis.tls.ca_file"},
                        Case{"another name", ca(f.ca) + ", server_name: wrong.example",
                             "does not name 'wrong.example'", "set redis.tls.server_name"}}) {
    INFO(c.what);
    Daemon d(over_tls(srv.url(), c.tls));
    reads_go_to_postgres(d, uid, "tls-refused");
    INFO(d.log());
    CHECK(d.log().find(c.says) != std::string::npos);
    CHECK(d.log().find(c.fix) != std::string::npos);
    CHECK(json::parse(d.get("/readyz").body).as_object().at("redis").as_object().at("state") == "down");
    CHECK(srv.cli("dbsize") == "0");  // nothing was ever written
    auto [rc, out] = run_command({"env", "-u", "SIDECACHE_REDIS_URL", sidecache_binary(), "check", "--connect", "--config", d.config_path()});
    INFO(out);
    CHECK(rc == 2);
    CHECK(out.find(c.says) != std::string::npos);
  }
}

TEST_CASE("redis over TLS: a server that asks for client certificates serves a client that has one, and refuses one "
          "without, whose reads go to PostgreSQL") {
  TlsRedis srv(true);
  const auto& f = TlsFiles::get();
  std::string uid = new_user("tls-client");

  Daemon without(over_tls(srv.url(), ca(f.ca)));
  reads_go_to_postgres(without, uid, "tls-client");
  CHECK(eventually([&] { return without.log().find("set redis.tls.cert_file and redis.tls.key_file") != std::string::npos; }));
  CHECK(srv.cli("dbsize") == "0");

  Daemon with(over_tls(srv.url(), ca(f.ca) + ", cert_file: \"" + f.client_cert + "\", key_file: \"" + f.client_key + "\""));
  REQUIRE(with.get(user(uid)).header("cache-status") == "sidecache; fwd=miss; stored");
  CHECK(with.get(user(uid)).header("cache-status") == "sidecache; hit");
  CHECK(std::stoi(srv.cli("dbsize")) > 0);
}

TEST_CASE("redis over TLS: a CA file that holds no certificate, or a key that is not the certificate's, is refused at "
          "start before any port is bound, saying which file") {
  const auto& f = TlsFiles::get();
  struct Case {
    std::string tls, says;
  };
  for (const Case& c : {Case{ca(f.server_key), "redis.tls.ca_file '" + f.server_key + "' holds no usable CA certificate"},
                        Case{ca(f.ca) + ", cert_file: \"" + f.client_cert + "\", key_file: \"" + f.server_key + "\"",
                             "is not the key of redis.tls.cert_file"}}) {
    Daemon::Options o = over_tls("rediss://127.0.0.1:1/0", c.tls);
    o.wait_ready = false;
    Daemon d(o);
    CHECK(d.wait_exit() == 2);
    INFO(d.log());
    CHECK(d.log().find(c.says) != std::string::npos);
    CHECK(d.log().find("listening on") == std::string::npos);
  }
}

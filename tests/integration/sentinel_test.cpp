// Redis Sentinel against real processes (a master, its replica, a
// sentinel): the master is found through the sentinel; a switch moves every
// connection; a master killed under load fails no read and loses no
// invalidation acknowledged with invalidation_replicas: 1; and an
// invalidation that no replica has is not acknowledged.
#include <catch2/catch.hpp>

#include <signal.h>

#include <boost/json.hpp>

#include "failover_checks.hpp"
#include "harness.hpp"
#include "sentinel_redis.hpp"

using namespace sidecache::it;
namespace json = boost::json;

namespace {
const std::string kOrg = "11111111-1111-1111-1111-111111111111";

std::string new_user(const std::string& name) { return insert_user(kOrg, name); }
void rename(const std::string& uid, const std::string& name) {
  Services::get().sql("UPDATE users SET display_name = '" + name + "' WHERE id = '" + uid + "'");
}
std::string user(const std::string& uid) { return "/v1/entities/user?org_id=" + kOrg + "&user_id=" + uid; }
std::string name_of(const Response& r) {
  return std::string(json::parse(r.body).as_object().at("display_name").as_string());
}
Daemon::Options through(const SentinelSet& s, const std::string& more = "", bool dead_first = false) {
  Daemon::Options o;
  o.redis_url = "redis://sentinel-managed/0";  // its host is not used: the sentinels name the master
  o.redis_extra = s.daemon_redis_extra(dead_first) + more;
  return o;
}
// The servers /readyz says the connections are on.
std::string servers(const Daemon& d) {
  auto v = json::parse(d.get("/readyz").body);
  return json::serialize(v.as_object().at("redis").as_object().at("servers"));
}
std::string only(int port) { return "[\"127.0.0.1:" + std::to_string(port) + "\"]"; }
bool hit_again(const Daemon& d, const std::string& t) {
  return eventually([&] { return d.get(t).header("cache-status") == "sidecache; hit"; }, 200);
}
}  // namespace

TEST_CASE("sentinel: the master is found through the sentinels (past one that does not answer), and a switch "
          "(SENTINEL FAILOVER) moves every connection to the new master while the old one lives on as a replica") {
  SentinelSet s;
  Daemon d(through(s, "", true));  // the first sentinel listed is not there
  std::string uid = new_user("sentinel-one");
  REQUIRE(d.get(user(uid)).header("cache-status") == "sidecache; fwd=miss; stored");
  REQUIRE(d.get(user(uid)).header("cache-status") == "sidecache; hit");
  CHECK(servers(d) == only(s.first_port()));
  CHECK(std::stoi(s.cli(s.first_port(), "dbsize")) > 0);

  REQUIRE(s.cli(s.sentinel_port(), std::string("sentinel failover ") + SentinelSet::kMaster) == "OK");
  REQUIRE(s.wait_failover(s.first_port()));
  // Hits alone (MGET) would go on working on the old master, now a replica:
  // only following +switch-master moves the connections.
  INFO(d.log());
  CHECK(eventually([&] { return servers(d) == only(s.second_port()); }, 200));
  CHECK(d.log().find("the sentinels switched master 'mymaster'") != std::string::npos);
  CHECK(metric_sample(d.get("/metrics").body, "sidecache_redis_master_switches_total ") == 1);

  // Reads and invalidations work on the new master.
  CHECK(hit_again(d, user(uid)));
  rename(uid, "sentinel-two");
  REQUIRE(http_request(d.port(), "DELETE", user(uid)).status == 200);
  CHECK(name_of(d.get(user(uid))) == "sentinel-two");
  CHECK(d.get(user(uid)).header("cache-status") == "sidecache; hit");

  auto [rc, out] = run_command({"env", "-u", "SIDECACHE_REDIS_URL", sidecache_binary(), "check", "--connect", "--config",
                                d.config_path()});
  INFO(out);
  CHECK(rc == 0);
  CHECK(out.find("redis master 'mymaster' (sentinel): ok, at 127.0.0.1:" + std::to_string(s.second_port())) !=
        std::string::npos);
}

TEST_CASE("sentinel: kill -9 the master under load: no read fails, hits resume on the promoted replica, and no "
          "invalidation acknowledged with invalidation_replicas: 1 is lost") {
  SentinelSet s;
  Daemon d(through(s, ", invalidation_replicas: 1"));
  // Keys the load reads, and keys that are only invalidated (and read at the
  // end): a fill by the load must not be what hides a lost invalidation.
  std::vector<std::string> loaded, invalidated;
  for (int i = 0; i < 10; ++i) loaded.push_back(user(new_user("load-" + std::to_string(i))));
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    ids.push_back(new_user("before-" + std::to_string(i)));
    invalidated.push_back(user(ids.back()));
  }
  for (const auto& t : invalidated) {
    d.get(t);
    REQUIRE(d.get(t).header("cache-status") == "sidecache; hit");
  }
  // Every cached value is on the replica too.
  REQUIRE(s.cli(s.first_port(), "wait 1 2000") == "1");

  Load load(d, loaded, 4);
  std::vector<bool> acknowledged(ids.size(), false);
  auto invalidate = [&](std::size_t i) {
    rename(ids[i], "after-" + std::to_string(i));
    int st = http_request(d.port(), "DELETE", invalidated[i]).status;
    CHECK((st == 200 || st == 503));
    acknowledged[i] = st == 200;
  };
  for (std::size_t i = 0; i < 10; ++i) invalidate(i);
  for (std::size_t i = 0; i < 10; ++i) CHECK(acknowledged[i]);  // a healthy replica acknowledges
  s.signal(s.first_port(), SIGKILL);
  for (std::size_t i = 10; i < ids.size(); ++i) invalidate(i);  // during the failover: 503 (queued) or 200
  REQUIRE(s.wait_failover(s.first_port()));
  INFO(d.log());
  CHECK(hit_again(d, loaded[0]));
  auto by_status = load.stop();
  INFO(dump(by_status));
  CHECK(by_status.size() == 1);
  CHECK(by_status[200] > 0);

  CHECK(check_invalidations_survived(d, invalidated, acknowledged) >= 10);
}

TEST_CASE("invalidation_replicas: 1: while no replica acknowledges, an invalidation answers 503 and is applied "
          "again, and once the replica is back it is acknowledged") {
  SentinelSet s;
  Daemon d(through(s, ", invalidation_replicas: 1"));
  std::string uid = new_user("wait-one");
  d.get(user(uid));
  REQUIRE(d.get(user(uid)).header("cache-status") == "sidecache; hit");

  s.signal(s.second_port(), SIGSTOP);  // the replica stops acknowledging
  struct Resume {
    const SentinelSet& s;
    ~Resume() { s.signal(s.second_port(), SIGCONT); }
  } resume{s};
  rename(uid, "wait-two");
  auto r = http_request(d.port(), "DELETE", user(uid));
  CHECK(r.status == 503);
  // Not acknowledged, but not forgotten: this process serves no old copy.
  CHECK(name_of(d.get(user(uid))) == "wait-two");
  INFO(d.log());
  CHECK(d.log().find("reached 0 of the 1 replicas") != std::string::npos);

  s.signal(s.second_port(), SIGCONT);
  CHECK(eventually([&] { return http_request(d.port(), "DELETE", user(uid)).status == 200; }));
  auto m = d.get("/metrics").body;
  CHECK(metric_sample(m, "sidecache_redis_failures_total{kind=\"not_replicated\"} ") >= 1);
}

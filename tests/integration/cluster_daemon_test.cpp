// The daemon on a real Redis Cluster (three masters, a replica each):
// tenants on every master, all-tenant invalidations that reach every slot,
// what /readyz, /metrics and check --connect show, a tenant's slot moved
// between masters under load, and a master killed under load. The read
// path, invalidation, race and L1 tests tagged [topology] also run against
// this cluster (tests/CMakeLists.txt).
#include <catch2/catch.hpp>

#include <signal.h>

#include <boost/json.hpp>

#include <atomic>
#include <map>
#include <thread>

#include "cluster_redis.hpp"
#include "harness.hpp"

using namespace sidecache::it;
namespace json = boost::json;

namespace {

std::string user(const std::string& org, const std::string& uid) {
  return "/v1/entities/user?org_id=" + org + "&user_id=" + uid;
}
std::string name_of(const Response& r) {
  return std::string(json::parse(r.body).as_object().at("display_name").as_string());
}
void rename(const std::string& uid, const std::string& name) {
  Services::get().sql("UPDATE users SET display_name = '" + name + "' WHERE id = '" + uid + "'");
}
Response invalidate(const Daemon& d, const std::string& body) {
  return http_request(d.port(), "POST", "/v1/invalidate", {"Content-Type: application/json"}, body);
}
std::string cache_status(const Daemon& d, const std::string& t) { return d.get(t).header("cache-status"); }

Daemon::Options on_cluster(const std::string& more = "") {
  ClusterSet& c = ClusterSet::get();
  Daemon::Options o;
  o.redis_url = "redis://127.0.0.1:" + std::to_string(c.seed_port()) + "/0";
  o.redis_extra = c.daemon_redis_extra() + more;
  o.redis_timeout = "500ms";
  return o;
}

// The slot of a tenant's keys ({=<tenant>}).
int slot_of_tenant(const std::string& org) {
  return std::stoi(ClusterSet::get().cli(ClusterSet::get().seed_port(), "cluster keyslot {=" + org + "}"));
}

// One org per master, by master port.
std::map<int, std::string> org_per_master() {
  ClusterSet& c = ClusterSet::get();
  std::map<int, std::string> out;
  for (int i = 0; out.size() < c.masters().size() && i < 200; ++i) {
    char org[40];
    std::snprintf(org, sizeof org, "%08d-2222-4222-8222-%012d", ::getpid() % 100000000, i);
    out.emplace(c.master_of(slot_of_tenant(org)), org);
  }
  for (auto& [m, org] : out)
    Services::get().sql("INSERT INTO orgs (id, name) VALUES ('" + org + "', 'cluster') ON CONFLICT DO NOTHING");
  return out;
}

std::string key_of(const Daemon& d, const std::string& org, const std::string& uid) {
  auto [rc, out] = run_command({sidecache_binary(), "key", "--config", d.config_path(), "user", "org_id=" + org,
                                "user_id=" + uid});
  REQUIRE(rc == 0);
  return out.substr(0, out.find('\n'));
}

}  // namespace

TEST_CASE("cluster daemon: each tenant's values live on the master of its slot; tenants on every master are cached, "
          "and flushed by tenant and for all tenants in their scope; /readyz, /metrics and check --connect show each node") {
  ClusterSet& c = ClusterSet::get();
  Daemon d(on_cluster());
  auto orgs = org_per_master();
  REQUIRE(orgs.size() == 3);
  std::map<int, std::string> uids, targets;
  for (auto& [master, org] : orgs) {
    uids[master] = insert_user(org, "cluster-" + std::to_string(master));
    targets[master] = user(org, uids[master]);
    INFO(d.log());
    REQUIRE(cache_status(d, targets[master]) == "sidecache; fwd=miss; stored");
    REQUIRE(cache_status(d, targets[master]) == "sidecache; hit");
    // On the master of the tenant's slot; the others send there.
    std::string key = key_of(d, org, uids[master]);
    CHECK(key.find("{=" + org + "}") != std::string::npos);
    for (auto& [m, o] : orgs) {
      std::string moved = "MOVED " + std::to_string(slot_of_tenant(org)) + " 127.0.0.1:" + std::to_string(master);
      CHECK(c.cli(m, "exists " + key) == (m == master ? "1" : moved));
    }
  }

  // All tenants: every slot's copy, so every master's tenants.
  for (auto& [m, uid] : uids) rename(uid, "renamed-" + std::to_string(m));
  auto r = invalidate(d, R"({"entity":"user"})");
  REQUIRE(r.status == 200);
  for (auto& [m, t] : targets) {
    CHECK(name_of(d.get(t)) == "renamed-" + std::to_string(m));
    CHECK(cache_status(d, t) == "sidecache; hit");
  }
  // One tenant: its own slot only.
  const int first = orgs.begin()->first;
  REQUIRE(invalidate(d, R"({"tenant":")" + orgs[first] + R"("})").status == 200);
  for (auto& [m, t] : targets) CHECK(cache_status(d, t) == (m == first ? "sidecache; fwd=miss; stored" : "sidecache; hit"));

  auto ready = json::parse(d.get("/readyz").body).as_object().at("redis").as_object();
  INFO(json::serialize(ready));
  CHECK(ready.at("state").as_string() == "up");
  CHECK(ready.at("mode").as_string() == "cluster");
  CHECK(ready.at("slots_covered").as_int64() == 16384);
  CHECK(ready.at("nodes").as_array().size() == 3);
  for (const auto& n : ready.at("nodes").as_array()) CHECK(n.as_object().at("breaker").as_string() == "closed");
  std::string metrics = d.get("/metrics").body;
  CHECK(metric_sample(metrics, "sidecache_redis_cluster_slots_covered ") == 16384);
  for (auto& [m, o] : orgs)
    CHECK(metric_sample(metrics, "sidecache_redis_node_breaker_state{node=\"127.0.0.1:" + std::to_string(m) + "\"} ") == 0);

  auto [rc, out] = run_command({"env", "-u", "SIDECACHE_REDIS_URL", sidecache_binary(), "check", "--connect", "--config",
                                d.config_path()});
  INFO(out);
  CHECK(rc == 0);
  CHECK(out.find("redis cluster, seed redis://127.0.0.1:" + std::to_string(c.seed_port()) + "/0: ok") != std::string::npos);
}

TEST_CASE("cluster daemon: redis.mode cluster pointed at a standalone Redis is refused at start, saying what to set") {
  Daemon::Options o;
  o.redis_extra = ", mode: cluster";
  o.wait_ready = false;
  Daemon d(o);
  CHECK(eventually([&] { return d.log().find("not a Redis Cluster node") != std::string::npos; }));
  INFO(d.log());
  CHECK(d.log().find("set redis.mode: standalone") != std::string::npos);
  CHECK(d.log().find("listening on") == std::string::npos);
  CHECK(d.wait_exit() == 2);
}

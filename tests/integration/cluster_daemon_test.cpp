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
#include "failover_checks.hpp"
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
// The last 20,000 bytes of the daemon's log (read once: it grows meanwhile).
std::string log_tail(const Daemon& d) {
  std::string all = d.log();
  return all.size() > 20000 ? all.substr(all.size() - 20000) : all;
}

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

TEST_CASE("cluster daemon: each tenant's values live on the master of its slot, tenants on every master are cached, "
          "and flushed by tenant and for all tenants in their scope, and /readyz, /metrics and check --connect show each node") {
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
  auto began = std::chrono::steady_clock::now();
  auto r = invalidate(d, R"({"entity":"user"})");
  // Reported, not asserted: what an all-tenant invalidation costs here.
  WARN("an all-tenant invalidation (16384 slots, 3 masters) answered in "
       << std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - began).count() / 1000.0
       << " ms");
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

namespace {

// Reads `targets` in `threads` threads until stop(): counts answers by
// status, and reads whose row is older than the last version the writer
// had invalidated (and been answered 200 for) before the read began.
class VersionedLoad {
 public:
  VersionedLoad(const Daemon& d, std::vector<std::string> targets, std::vector<std::atomic<int>>& acked, int threads)
      : targets_(std::move(targets)), acked_(acked) {
    for (int t = 0; t < threads; ++t)
      threads_.emplace_back([this, &d, t] {
        for (std::size_t i = static_cast<std::size_t>(t); !stop_; ++i) {
          std::size_t k = i % targets_.size();
          int floor = acked_[k].load();
          auto r = d.get(targets_[k]);
          std::lock_guard lock(mu_);
          ++by_status_[r.status];
          if (r.status != 200) continue;
          std::string name = name_of(r);
          int version = name.rfind("v", 0) == 0 ? std::stoi(name.substr(1)) : 0;
          if (version < floor) {
            ++stale_;
            if (stale_ <= 5)
              first_stale_ += targets_[k].substr(targets_[k].size() - 8) + " read v" + std::to_string(version) + " after v" +
                              std::to_string(floor) + " was invalidated (" + r.header("cache-status") + ")\n";
          }
        }
      });
  }
  std::map<int, int> stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    return by_status_;
  }
  int stale() const { return stale_; }
  const std::string& first_stale() const { return first_stale_; }
  ~VersionedLoad() { stop(); }

 private:
  std::vector<std::string> targets_;
  std::vector<std::atomic<int>>& acked_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::map<int, int> by_status_;
  int stale_ = 0;
  std::string first_stale_;
};

}  // namespace

TEST_CASE("cluster daemon: a hot tenant's slot moved between masters under reads and invalidations: no read fails, "
          "none returns a row older than an invalidation that had answered, and hits resume on the new master") {
  ClusterSet& c = ClusterSet::get();
  Daemon d(on_cluster());
  auto orgs = org_per_master();
  const std::string org = orgs.begin()->second;
  const int slot = slot_of_tenant(org);
  const int from = c.master_of(slot);
  int to = 0;
  for (int m : c.masters())
    if (m != from) to = m;
  std::vector<std::string> uids, targets;
  for (int i = 0; i < 8; ++i) {
    uids.push_back(insert_user(org, "v0"));
    targets.push_back(user(org, uids.back()));
    REQUIRE(d.get(targets.back()).status == 200);
  }
  std::vector<std::atomic<int>> acked(uids.size());
  std::atomic<bool> done{false};
  std::atomic<int> answered{0}, refused{0};
  // The writer: a new version in PostgreSQL, then its invalidation; once
  // that answered 200, no read that begins later may return an older row.
  std::thread writer([&] {
    for (int v = 1; !done; ++v) {
      std::size_t k = static_cast<std::size_t>(v) % uids.size();
      rename(uids[k], "v" + std::to_string(v));
      int st = http_request(d.port(), "DELETE", targets[k]).status;
      if (st == 200) {
        acked[k] = v;
        ++answered;
      } else {
        ++refused;  // 503: not acknowledged (queued and applied later)
      }
    }
  });
  VersionedLoad load(d, targets, acked, 4);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // ASK is answered while the keys are on the new master and the slot is
  // not yet given to it.
  if (!std::getenv("NOMOVE")) c.move_slot(slot, to, [] { std::this_thread::sleep_for(std::chrono::milliseconds(300)); });
  else std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  done = true;
  writer.join();
  auto by_status = load.stop();
  INFO(log_tail(d));
  INFO("invalidations answered 200: " << answered << ", 503: " << refused);
  CHECK(by_status.size() == 1);
  CHECK(by_status[200] > 100);
  INFO(load.first_stale());
  CHECK(load.stale() == 0);
  CHECK(answered > 10);
  CHECK(c.master_of(slot) == to);
  // Hits again, from the new master.
  CHECK(eventually([&] { return cache_status(d, targets[0]) == "sidecache; hit"; }, 200));
  CHECK(c.cli(to, "exists " + key_of(d, org, uids[0])) == "1");
  c.move_slot(slot, from);
}

TEST_CASE("cluster daemon: kill -9 a master under load: no read fails, hits resume once its replica is promoted, and "
          "no invalidation acknowledged with invalidation_replicas: 1 is lost") {
  ClusterSet& c = ClusterSet::get();
  Daemon d(on_cluster(", invalidation_replicas: 1"));
  auto orgs = org_per_master();
  // A master that is not the seed (the daemon's first address).
  int victim = 0;
  for (auto& [m, o] : orgs)
    if (m != c.seed_port()) victim = m;
  REQUIRE(victim != 0);
  const std::string org = orgs[victim];
  std::vector<std::string> loaded, invalidated, ids;
  for (auto& [m, o] : orgs) loaded.push_back(user(o, insert_user(o, "load")));
  for (int i = 0; i < 20; ++i) {
    ids.push_back(insert_user(org, "before-" + std::to_string(i)));
    invalidated.push_back(user(org, ids.back()));
    d.get(invalidated.back());
    REQUIRE(cache_status(d, invalidated.back()) == "sidecache; hit");
  }
  REQUIRE(c.cli(victim, "wait 1 2000") == "1");  // every cached value is on the replica too

  Load load(d, loaded, 4);
  std::vector<bool> acknowledged(ids.size(), false);
  auto invalidate_one = [&](std::size_t i) {
    rename(ids[i], "after-" + std::to_string(i));
    int st = http_request(d.port(), "DELETE", invalidated[i]).status;
    CHECK((st == 200 || st == 503));
    acknowledged[i] = st == 200;
  };
  for (std::size_t i = 0; i < 10; ++i) invalidate_one(i);
  for (std::size_t i = 0; i < 10; ++i) CHECK(acknowledged[i]);  // a healthy replica acknowledges
  c.signal(victim, SIGKILL);
  for (std::size_t i = 10; i < ids.size(); ++i) invalidate_one(i);  // during the failover: 503 (queued) or 200
  REQUIRE(c.wait_promoted(victim));
  INFO(log_tail(d));
  // Hits resume on the promoted replica.
  const std::string victims_user = user(org, insert_user(org, "after-failover"));
  CHECK(eventually([&] {
    d.get(victims_user);
    return cache_status(d, victims_user) == "sidecache; hit";
  }, 300));
  auto by_status = load.stop();
  INFO(dump(by_status));
  CHECK(by_status.size() == 1);
  CHECK(by_status[200] > 0);
  CHECK(check_invalidations_survived(d, invalidated, acknowledged) >= 10);
}

TEST_CASE("cluster daemon: L1 copies are dropped in every process by an invalidation through another, and when the "
          "node holding the L1 subscription drops it, L1 is flushed and subscribes again on the next seed node") {
  ClusterSet& c = ClusterSet::get();
  auto with_l1 = [](Daemon::Options o) {
    o.extra_main = "l1: { max_bytes: 8MiB, ttl: 60s }\n";
    return o;
  };
  Daemon a(with_l1(on_cluster()));
  Daemon::Options same = with_l1(on_cluster());
  same.key_prefix = a.prefix();
  Daemon b(same);
  auto l1_on = [](const Daemon& d) {
    auto o = json::parse(d.get("/readyz").body).as_object();
    return o.contains("l1") && o.at("l1").as_object().at("state").as_string() == "on";
  };
  REQUIRE(eventually([&] { return l1_on(a) && l1_on(b); }));
  auto orgs = org_per_master();
  const std::string org = orgs.rbegin()->second;
  const std::string uid = insert_user(org, "l1-before"), t = user(org, uid);
  b.get(t);
  const std::string second = cache_status(b, t);
  INFO(b.log());  // on a failure: what b's L1 and its feed did around these two reads
  INFO(a.log());  // and what a published to it (a's own flush at LISTEN, say)
  REQUIRE(second == "sidecache; hit; detail=l1");
  // An entity-wide invalidation through a: b's copy goes (its mark, not a slot's copy).
  rename(uid, "l1-after");
  REQUIRE(invalidate(a, R"({"entity":"user"})").status == 200);
  CHECK(eventually([&] { return name_of(b.get(t)) == "l1-after"; }));
  b.get(t);
  REQUIRE(cache_status(b, t) == "sidecache; hit; detail=l1");

  // The seed node drops every subscriber connection (a's and b's).
  c.cli(c.seed_port(), "client kill type pubsub");
  REQUIRE(eventually([&] { return b.log().find("l1: flushed and off") != std::string::npos; }));
  INFO(log_tail(b));
  CHECK(cache_status(b, t) != "sidecache; hit; detail=l1");  // flushed
  REQUIRE(eventually([&] { return l1_on(b); }, 200));
  // Subscribed again, on the next seed (redis.nodes' first).
  CHECK(b.log().find("again (on 127.0.0.1:" + std::to_string(c.ports()[1]) + ")") != std::string::npos);
  rename(uid, "l1-again");
  REQUIRE(http_request(a.port(), "DELETE", t).status == 200);
  CHECK(eventually([&] { return name_of(b.get(t)) == "l1-again"; }));
}

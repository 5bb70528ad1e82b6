// The cluster client against a real Redis Cluster (three masters, a replica
// each): routing by slot, MOVED after a slot moved, ASK while it moves.
// These tests drive the client directly, as store_test does the store;
// cluster_daemon_test.cpp runs the daemon on the cluster.
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <optional>
#include <thread>

#include "cluster_redis.hpp"
#include "harness.hpp"
#include "sidecache/redis/cluster_client.hpp"

using namespace sidecache;
using namespace sidecache::it;
namespace net = boost::asio;

namespace {

struct Client {
  net::io_context io;
  std::shared_ptr<redis::ClusterTopology> topo;
  std::shared_ptr<redis::ClusterClient> client;

  explicit Client(std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) {
    ClusterSet& c = ClusterSet::get();
    config::RedisConfig rc;
    rc.host = "127.0.0.1";
    rc.port = static_cast<std::uint16_t>(c.seed_port());
    rc.timeout = timeout;
    topo = std::make_shared<redis::ClusterTopology>(io.get_executor(), rc,
                                                    std::vector<redis::Node>{{"127.0.0.1", rc.port, ""}});
    client = std::make_shared<redis::ClusterClient>(io.get_executor(), rc, "cluster-test", topo);
    topo->refresh("start");
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!topo->map() && std::chrono::steady_clock::now() < give_up) io.run_one_for(std::chrono::milliseconds(100));
    io.restart();
    REQUIRE(topo->map());
  }
  ~Client() {
    client->stop();
    io.restart();
    io.run_for(std::chrono::milliseconds(50));
  }
  redis::Reply run(net::awaitable<redis::Reply> a) {
    std::optional<redis::Reply> out;
    net::co_spawn(io, [&]() -> net::awaitable<void> { out = co_await std::move(a); }, net::detached);
    io.restart();
    while (!out && io.run_one_for(std::chrono::seconds(5))) {
    }
    REQUIRE(out);
    return std::move(*out);
  }
  redis::Reply cmd(const std::string& key, std::vector<std::string> argv) {
    auto owned = std::make_shared<std::vector<std::string>>(std::move(argv));
    auto views = std::make_shared<std::vector<std::string_view>>(owned->begin(), owned->end());
    return run([](std::shared_ptr<redis::ClusterClient> c, std::string k, std::shared_ptr<std::vector<std::string>> o,
                  std::shared_ptr<std::vector<std::string_view>> v) -> net::awaitable<redis::Reply> {
      (void)o;
      co_return co_await c->command_for(k, *v);
    }(client, key, owned, views));
  }
};

std::string unique(const std::string& base) { return base + std::to_string(::getpid()); }

}  // namespace

TEST_CASE("cluster client: the slot map covers every slot, each key goes to its slot's master, and keys with one "
          "hash tag share an MGET and a script") {
  Client c;
  ClusterSet& set = ClusterSet::get();
  CHECK(c.topo->map()->covered() == redis::kSlots);
  CHECK(c.topo->map()->nodes().size() == 3);
  // Keys spread over every master.
  for (int i = 0; i < 30; ++i) {
    std::string k = unique("route:") + ":" + std::to_string(i);
    REQUIRE(c.cmd(k, {"SET", k, "v" + std::to_string(i)}).status == redis::Reply::Status::ok);
    int port = set.master_of(redis::key_slot(k));
    CHECK(set.cli(port, "get " + k) == "v" + std::to_string(i));  // on the owner itself, no redirection
  }
  CHECK(c.client->nodes().size() == 3);
  CHECK(c.client->moved_count() == 0);

  std::string a = "{" + unique("tenant") + "}:a", b = "{" + unique("tenant") + "}:b";
  c.cmd(a, {"SET", a, "1"});
  c.cmd(b, {"SET", b, "2"});
  auto both = c.run(c.client->mget({a, b}));
  REQUIRE(both.elements.size() == 2);
  CHECK(both.elements[1].value == "2");
  redis::Script sum("return tonumber(redis.call('GET', KEYS[1])) + tonumber(redis.call('GET', KEYS[2]))");
  auto s = c.run(c.client->eval(sum, {a, b}, {}));
  CHECK(s.integer == 3);
  // Two slots in one command is the caller's mistake, answered as Redis does.
  auto cross = c.run(c.client->mget({unique("x:1"), unique("y:2")}));
  CHECK(cross.status == redis::Reply::Status::error);
  CHECK(cross.error.rfind("CROSSSLOT", 0) == 0);
}

TEST_CASE("cluster client: after a slot moves to another master, MOVED is followed, the map is patched, and the "
          "map is refreshed at most about once a second") {
  Client c;
  ClusterSet& set = ClusterSet::get();
  std::string k = unique("moved:");
  std::uint16_t slot = redis::key_slot(k);
  REQUIRE(c.cmd(k, {"SET", k, "before"}).status == redis::Reply::Status::ok);
  int from = set.master_of(slot);
  int to = 0;
  for (int m : set.masters())
    if (m != from) to = m;
  REQUIRE(to != 0);
  set.move_slot(slot, to);

  auto got = c.cmd(k, {"GET", k});
  CHECK(got.value == "before");
  CHECK(c.client->moved_count() == 1);
  auto map = c.topo->map();
  CHECK(map->nodes()[static_cast<std::size_t>(map->node_of(slot))].port == to);
  // Now straight to the new owner.
  for (int i = 0; i < 20; ++i) CHECK(c.cmd(k, {"GET", k}).value == "before");
  CHECK(c.client->moved_count() == 1);
  // Many MOVED in a burst (the map forgotten, as after a big resharding)
  // make at most a couple of refreshes, not one each.
  auto refreshes = c.topo->refreshes();
  for (int i = 0; i < 30; ++i) {
    c.topo->moved(slot, redis::Node{"127.0.0.1", static_cast<std::uint16_t>(from), ""});
    CHECK(c.cmd(k, {"GET", k}).value == "before");
  }
  c.io.restart();
  c.io.run_for(std::chrono::milliseconds(100));
  CHECK(c.topo->refreshes() - refreshes <= 2);
  set.move_slot(slot, from);  // as it was, for the other tests of this process
}

TEST_CASE("cluster client: while a slot migrates, a key already moved is answered through ASK (ASKING, then the "
          "command, on the new node) and the map does not change") {
  Client c;
  ClusterSet& set = ClusterSet::get();
  std::string k = unique("ask:");
  std::uint16_t slot = redis::key_slot(k);
  REQUIRE(c.cmd(k, {"SET", k, "moving"}).status == redis::Reply::Status::ok);
  int from = set.master_of(slot);
  int to = 0;
  for (int m : set.masters())
    if (m != from) to = m;
  set.move_slot(slot, to, [&] {
    // The key is on `to`; the slot still belongs to `from`, which answers ASK.
    auto got = c.cmd(k, {"GET", k});
    CHECK(got.value == "moving");
    CHECK(c.client->ask_count() >= 1);
    CHECK(c.client->moved_count() == 0);
    auto map = c.topo->map();
    CHECK(map->nodes()[static_cast<std::size_t>(map->node_of(slot))].port == from);
  });
  CHECK(c.cmd(k, {"GET", k}).value == "moving");
  set.move_slot(slot, from);
}

TEST_CASE("cluster client: moving a hot slot between masters while it is read and written fails no single-key "
          "command and never reads a value older than one it has read") {
  Client c;
  ClusterSet& set = ClusterSet::get();
  const std::string tag = "{" + unique("hot") + "}";
  std::vector<std::string> keys;
  for (int i = 0; i < 20; ++i) keys.push_back(tag + ":k" + std::to_string(i));
  const std::uint16_t slot = redis::key_slot(keys[0]);
  for (const auto& k : keys) REQUIRE(c.cmd(k, {"SET", k, "0"}).status == redis::Reply::Status::ok);
  int from = set.master_of(slot), to = 0;
  for (int m : set.masters())
    if (m != from) to = m;

  std::atomic<bool> done{false};
  long long failed = 0, stale = 0, reads = 0, writes = 0;
  std::string last_error;
  std::vector<long long> written(keys.size(), 0), seen(keys.size(), 0);
  auto writer = [&]() -> net::awaitable<void> {
    for (long long n = 1; !done; ++n) {
      std::size_t i = static_cast<std::size_t>(n) % keys.size();
      std::string v = std::to_string(n);
      std::string_view argv[] = {"SET", keys[i], v};
      redis::Reply r = co_await c.client->command_for(keys[i], argv);
      if (r.status != redis::Reply::Status::ok) ++failed, last_error = r.error;
      else written[i] = n, ++writes;
    }
  };
  auto reader = [&](std::size_t start) -> net::awaitable<void> {
    for (std::size_t n = start; !done; ++n) {
      std::size_t i = n % keys.size();
      std::string_view argv[] = {"GET", keys[i]};
      redis::Reply r = co_await c.client->command_for(keys[i], argv);
      if (r.status != redis::Reply::Status::value) {
        ++failed, last_error = r.error;
        continue;
      }
      long long v = std::stoll(r.value);
      if (v < seen[i]) ++stale;
      seen[i] = std::max(seen[i], v);
      ++reads;
    }
  };
  net::co_spawn(c.io, writer(), net::detached);
  for (std::size_t r = 0; r < 4; ++r) net::co_spawn(c.io, reader(r * 5), net::detached);
  std::thread mover([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    set.move_slot(slot, to);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    done = true;
  });
  c.io.restart();
  while (!done) c.io.run_for(std::chrono::milliseconds(50));
  mover.join();
  c.io.run_for(std::chrono::milliseconds(100));  // let the loops end
  INFO("reads " << reads << ", writes " << writes << ", last error: " << last_error);
  CHECK(failed == 0);
  CHECK(stale == 0);
  CHECK(reads > 100);
  CHECK(writes > 100);
  CHECK(set.master_of(slot) == to);
  CHECK(c.client->moved_count() >= 1);
  set.move_slot(slot, from);
}

TEST_CASE("cluster client: one breaker per node: a master that stops answering has its breaker opened and its "
          "commands refused at once, while the other masters' keys are served") {
  Client c(std::chrono::milliseconds(100));
  ClusterSet& set = ClusterSet::get();
  // Two keys on two different masters.
  std::string sick_key, well_key;
  for (int i = 0; sick_key.empty() || well_key.empty(); ++i) {
    std::string k = unique("node:") + ":" + std::to_string(i);
    if (sick_key.empty()) sick_key = k;
    else if (set.master_of(redis::key_slot(k)) != set.master_of(redis::key_slot(sick_key))) well_key = k;
  }
  REQUIRE(c.cmd(sick_key, {"SET", sick_key, "s"}).status == redis::Reply::Status::ok);
  REQUIRE(c.cmd(well_key, {"SET", well_key, "w"}).status == redis::Reply::Status::ok);
  const int sick = set.master_of(redis::key_slot(sick_key));
  const std::string sick_addr = "127.0.0.1:" + std::to_string(sick);
  // The master stops answering its clients (the cluster bus goes on, so no
  // failover starts).
  set.cli(sick, "client pause 4000 all");
  std::string last;
  bool opened = false;
  for (int i = 0; i < 40 && !opened; ++i) {
    auto r = c.cmd(sick_key, {"GET", sick_key});
    CHECK(r.status != redis::Reply::Status::value);
    last = r.error;
    opened = r.error == "circuit breaker open for " + sick_addr;
    CHECK(c.cmd(well_key, {"GET", well_key}).value == "w");  // the other shard serves throughout
  }
  INFO("last: " << last);
  CHECK(opened);
  bool sick_open = false, others_closed = true;
  for (const auto& [addr, st] : c.topo->breakers()) {
    if (addr == sick_addr) sick_open = st == redis::CircuitBreaker::State::open;
    else others_closed = others_closed && st == redis::CircuitBreaker::State::closed;
  }
  CHECK(sick_open);
  CHECK(others_closed);
  set.cli(sick, "client unpause");
  // Past open_timeout a probe closes it again.
  CHECK(eventually([&] { return c.cmd(sick_key, {"GET", sick_key}).value == "s"; }, 100));
}

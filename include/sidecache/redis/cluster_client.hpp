#pragma once
// Redis Cluster, client side.
//
// - ClusterTopology (one per process): the slot map, from CLUSTER SLOTS on
//   the seeds (redis.url and redis.nodes) or any node it knows. A refresh is
//   asked for after MOVED, a lost connection, READONLY or a slot without a
//   master; at most one runs at a time and they start at most once a second.
//   A MOVED also patches its slot at once.
// - ClusterClient (one per worker): a Connection per master, made on first
//   use; each command goes to the master of its first key's slot. MOVED is
//   followed (the map is patched), ASK is answered with ASKING and the
//   command resent to the node named, with no change to the map; TRYAGAIN
//   and CLUSTERDOWN get a few short retries. A command whose keys are in
//   two slots is the caller's error (CROSSSLOT): keys that go together
//   share a hash tag. Each node has its own circuit breaker (in the
//   topology, shared by the workers): while it is open, that node's
//   commands fail at once and the others' go on.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sidecache/config/config.hpp"
#include "sidecache/redis/circuit_breaker.hpp"
#include "sidecache/redis/cluster_slots.hpp"
#include "sidecache/redis/connection.hpp"

namespace sidecache::redis {

class ClusterTopology : public std::enable_shared_from_this<ClusterTopology> {
 public:
  // Refreshes run on `ex`. `seeds`: where to ask first.
  ClusterTopology(net::any_io_executor ex, config::RedisConfig cfg, std::vector<Node> seeds);

  // The current map; null until the first refresh answered. Any thread.
  std::shared_ptr<const SlotMap> map() const;
  // Asks for a refresh (see above). Any thread.
  void refresh(const std::string& why);
  // A MOVED: `slot` is served by `to` now. Any thread.
  void moved(std::uint16_t slot, const Node& to);
  // Refreshes that ran, and the last one's failure ("" when it worked).
  std::uint64_t refreshes() const { return refreshes_.load(); }
  std::string last_error() const;
  // A node's connection settings: `cfg`'s TLS and password, its address.
  config::RedisConfig node_config(const Node& n) const;
  // The circuit breaker of the node at `address` (host:port), made on first
  // use with redis.breaker's settings: one sick shard sends only its own
  // slots' reads to PostgreSQL. Any thread; the reference stays valid.
  CircuitBreaker& breaker(const std::string& address);
  // Every node's breaker state, by address.
  std::vector<std::pair<std::string, CircuitBreaker::State>> breakers();

 private:
  void start_refresh();
  net::any_io_executor ex_;
  config::RedisConfig cfg_;
  std::vector<Node> seeds_;
  mutable std::mutex mu_;
  std::shared_ptr<const SlotMap> map_;
  bool running_ = false, again_ = false;
  std::chrono::steady_clock::time_point last_start_{};
  std::string last_error_;
  std::atomic<std::uint64_t> refreshes_{0};
  std::map<std::string, std::unique_ptr<CircuitBreaker>> breakers_;  // under mu_
};

class ClusterClient : public Client, public std::enable_shared_from_this<ClusterClient> {
 public:
  ClusterClient(net::any_io_executor ex, config::RedisConfig cfg, std::string name, std::shared_ptr<ClusterTopology> topo);
  ~ClusterClient();
  // On the executor.
  void stop();

  // Client. (`asking` is the client's own business here: ignored.)
  net::awaitable<Reply> mget(const std::vector<std::string>& keys, std::size_t split = 0, LateVerdict late = {},
                             bool asking = false) override;
  net::awaitable<Reply> eval(const Script& script, const std::vector<std::string>& keys,
                             const std::vector<std::string_view>& args, std::size_t split = 0, LateVerdict late = {},
                             bool asking = false) override;
  // Any command, sent to the master of `key`'s slot.
  net::awaitable<Reply> command_for(std::string_view key, std::span<const std::string_view> argv, std::size_t split = 0,
                                    LateVerdict late = {},
                                    std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) override;
  // The sum over its connections, and one more for every connection made.
  std::uint64_t writes() const override;
  // The session of the connection to the master of `key`'s slot.
  std::uint64_t session(std::string_view key) const override;
  std::vector<std::vector<std::uint16_t>> slots_by_master() const override;
  const net::any_io_executor& executor() const override { return ex_; }
  const config::RedisConfig& config() const override { return cfg_; }

  // The connections made so far, by address (for /readyz and the tests).
  // Any thread.
  std::vector<std::pair<std::string, State>> nodes() const;
  // Redirections followed, by kind.
  std::uint64_t moved_count() const { return moved_; }
  std::uint64_t ask_count() const { return asked_; }

 private:
  using Send = std::function<net::awaitable<Reply>(Connection&, bool asking, LateVerdict late)>;
  net::awaitable<Reply> routed(std::string_view key, LateVerdict late, Send send);
  std::shared_ptr<Connection> connection(const Node& n);

  net::any_io_executor ex_;
  config::RedisConfig cfg_;
  std::string name_;
  std::shared_ptr<ClusterTopology> topo_;
  std::map<std::string, std::shared_ptr<Connection>> conns_;  // written on ex_ only, under conns_mu_
  mutable std::mutex conns_mu_;
  std::uint64_t moved_ = 0, asked_ = 0, made_ = 0;
};

}  // namespace sidecache::redis

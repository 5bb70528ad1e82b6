#pragma once
// The daemon's wiring: one Service serves every worker. It owns the Redis
// connections (one per worker), the PostgreSQL pool, the L1 and its
// subscription, the NOTIFY listener, and the read path and invalidator that
// run on them; it dispatches each HTTP request (handle), reloads the
// configuration (SIGHUP) and reports status (/readyz, /metrics).
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>

#include <atomic>
#include <memory>
#include <vector>

#include "sidecache/cache/filler.hpp"
#include "sidecache/cache/invalidator.hpp"
#include "sidecache/cache/l1.hpp"
#include "sidecache/cache/audit.hpp"
#include "sidecache/cache/read_path.hpp"
#include "sidecache/cache/redis_store.hpp"
#include "sidecache/cache/snapshot.hpp"
#include "sidecache/cache/wal_position.hpp"
#include "sidecache/config/config.hpp"
#include "sidecache/http/router.hpp"
#include "sidecache/http/server.hpp"
#include "sidecache/metrics/metrics.hpp"
#include "sidecache/pg/listener.hpp"
#include "sidecache/pg/pool.hpp"
#include "sidecache/pg/replicas.hpp"
#include "sidecache/redis/circuit_breaker.hpp"
#include "sidecache/redis/cluster_client.hpp"
#include "sidecache/redis/connection.hpp"
#include "sidecache/redis/sentinel.hpp"
#include "sidecache/redis/subscriber.hpp"

namespace sidecache::app {

namespace net = boost::asio;
using cache::Snapshot;
using cache::SnapshotPtr;

class Service : public http::Handler {
 public:
  Service(std::shared_ptr<const config::Config> cfg, std::vector<net::io_context*> workers);
  ~Service() override;

  // Starts the pool and the Redis connections.
  void start();
  // Closes the Redis connections and the pool; call after the server drained.
  void stop();
  // Loads `path` again (src/app/reload.cpp). Settings the settings table
  // marks reloadable take effect for new requests; the others are kept and
  // named in a warning. On errors the running config stays and the errors
  // are logged. Returns whether it was applied.
  bool reload(const std::string& path);
  // Stop reporting ready (SIGTERM: load balancers should look elsewhere).
  void set_draining() { draining_ = true; }

  net::awaitable<http::Answer> handle(http::Request req) override;

  const pg::Pool& pool() const { return pool_; }
  SnapshotPtr current() const { return std::atomic_load(&snap_); }

 private:
  // A Redis connection on worker `worker` (named `name` in log lines, kept
  // in redis_; a cluster client in cluster_clients_) and the store over it.
  std::unique_ptr<cache::RedisStore> redis_store(std::size_t worker, const std::string& name);
  net::awaitable<http::Answer> invalidate(cache::Invalidation inv, unsigned worker);
  // POST /v1/batch: every item read (get_many) and answered in order.
  net::awaitable<http::Answer> batch(std::vector<http::Route::BatchItem> items, SnapshotPtr snap, unsigned worker,
                                     std::chrono::steady_clock::time_point started);
  net::awaitable<http::Answer> readyz(const Snapshot& s);  // src/app/status.cpp
  std::string scrape_metrics(const Snapshot& s);           // src/app/status.cpp
  boost::json::object cluster_status(const config::Config& cfg) const;  // /readyz's "redis" on a cluster
  std::vector<metrics::Snapshot::RedisNode> cluster_nodes() const;      // every node the process knows

  void on_notification(const std::string& payload);
  bool on_listening(bool first);  // whether it flushes
  net::awaitable<void> flush_listening(SnapshotPtr s, unsigned worker, bool first);
  unsigned next_worker();

  metrics::Metrics metrics_;
  SnapshotPtr snap_;  // std::atomic_load / std::atomic_store
  std::vector<net::io_context*> workers_;
  std::vector<std::shared_ptr<redis::Connection>> redis_;  // one per worker (+ one for invalidations with invalidation_replicas)
  // Redis Cluster (redis.mode: cluster): the slot map, and a client per
  // worker (+ one for invalidations) instead of redis_.
  std::shared_ptr<redis::ClusterTopology> cluster_;
  std::vector<std::shared_ptr<redis::ClusterClient>> cluster_clients_;
  // The seed nodes (redis.url, then redis.nodes), each as a server.
  std::vector<config::RedisConfig> cluster_seeds() const;
  std::vector<std::unique_ptr<cache::RedisStore>> stores_;  // one per worker, over redis_
  std::vector<std::unique_ptr<cache::RedisStore>> inval_stores_;  // invalidation_replicas > 0: invalidations
  pg::Pool pool_;
  pg::Replicas replicas_;  // postgres.replicas (none: fills use pool_ only)
  cache::PgWalPosition wal_position_;
  cache::PoolFiller filler_;
  redis::CircuitBreaker breaker_;
  // L1, when l1.max_bytes > 0; it serves only while l1_sub_ is subscribed.
  std::unique_ptr<cache::NearCache> l1_;
  std::shared_ptr<redis::Subscriber> l1_sub_;
  // Sentinel mode: follows +switch-master.
  std::unique_ptr<redis::SentinelWatch> sentinel_watch_;
  std::string l1_channel_;  // every process publishes its invalidations here
  std::unique_ptr<cache::Auditor> auditor_;  // before reads_, which points to it
  std::unique_ptr<cache::ReadPath> reads_;
  std::unique_ptr<cache::Invalidator> invalidator_;
  std::shared_ptr<net::steady_timer> replay_timer_;
  std::unique_ptr<pg::Listener> listener_;
  std::atomic<bool> listener_flushed_{false};  // the first flush after LISTEN is done
  std::atomic<unsigned> flushes_waiting_{0};    // flushes at LISTEN retried: Redis was out of reach
  std::atomic<unsigned> round_robin_{0};
  std::atomic<bool> draining_{false};
};

}  // namespace sidecache::app

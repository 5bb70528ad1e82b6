#pragma once
// The read path: route -> Redis -> (singleflight) -> PostgreSQL -> store ->
// answer. One Service serves every worker; each worker has its own Redis
// connection, the singleflight table and the PostgreSQL pool are shared.
#include <boost/asio/io_context.hpp>

#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <unordered_map>
#include <memory>
#include <mutex>
#include <vector>

#include "sidecache/cache/l1.hpp"
#include "sidecache/cache/singleflight.hpp"
#include "sidecache/cache/store.hpp"
#include "sidecache/cache/value.hpp"
#include "sidecache/config/config.hpp"
#include "sidecache/http/router.hpp"
#include "sidecache/http/server.hpp"
#include "sidecache/metrics/metrics.hpp"
#include "sidecache/pg/listener.hpp"
#include "sidecache/pg/pool.hpp"
#include "sidecache/redis/circuit_breaker.hpp"
#include "sidecache/redis/connection.hpp"
#include "sidecache/redis/subscriber.hpp"

namespace sidecache::app {

namespace net = boost::asio;

// What one fill (or the leader's second look in Redis) produced; shared with
// every request that collapsed onto it.
struct Outcome {
  unsigned status = 500;
  std::string body;  // JSON result, or the JSON error body
  cache::ValueHeader header;
  bool from_cache = false;  // the leader found a fresh value in Redis after all
  bool stored = false;
  std::string retry_after;  // set on 503
  // When the read behind this outcome began (Redis clock); 0 when unknown
  // (Redis was down). Waiters compare it with the invalidations they saw.
  std::uint64_t read_began_us = 0;
};

// One loaded configuration and what is derived from it. A request keeps the
// snapshot it started with, so a reload (SIGHUP) never mixes two configs in
// one request.
struct Snapshot {
  std::shared_ptr<const config::Config> cfg;
  std::uint64_t max_fill_age_us = 0;   // older fills are answered but not stored
  std::uint64_t tombstone_ttl_ms = 0;  // > max_fill_age: a tombstone outlives every fill it must stop
  std::uint64_t watermark_ttl_ms = 0;  // > the longest life of any value
  std::uint64_t lease_ttl_ms = 0;      // a crashed filler's lease frees the key after this
  std::uint64_t generation = 0;        // 1 at start, +1 per reload
};
using SnapshotPtr = std::shared_ptr<const Snapshot>;

class Service : public http::Handler {
 public:
  Service(std::shared_ptr<const config::Config> cfg, std::vector<net::io_context*> workers);
  ~Service() override;

  // Starts the pool and the Redis connections.
  void start();
  // Closes the Redis connections and the pool; call after the server drained.
  void stop();
  // Loads `path` again. Entities, defaults, key_prefix, tenant and log_level
  // take effect for new requests; settings that cannot change without a
  // restart are kept and named in a warning. On errors the running config
  // stays and the errors are logged. Returns whether it was applied.
  bool reload(const std::string& path);
  // Stop reporting ready (SIGTERM: load balancers should look elsewhere).
  void set_draining() { draining_ = true; }

  net::awaitable<http::Answer> handle(http::Request req) override;

  const pg::Pool& pool() const { return pool_; }
  SnapshotPtr current() const { return std::atomic_load(&snap_); }

  // Runs one invalidation against Redis; nullopt when Redis could not be
  // reached (nothing took effect). Used by the API and the NOTIFY listener.
  // `source` (api, notify, listen, replay) labels the metric.
  net::awaitable<std::optional<std::uint64_t>> apply(const Snapshot& s, const http::Invalidation& inv, unsigned worker,
                                                     const char* source);

 private:
  // How a fill treats another process's lease on the key.
  enum class LeaseMode {
    wait,  // wait (bounded) for that process's value; then fill anyway
    skip,  // a background refresh: someone is already on it, do nothing
    none,  // no-cache: fill regardless
  };

  net::awaitable<http::Answer> get_entity(SnapshotPtr s, const http::EntityRequest& req, bool no_cache, unsigned worker);
  // The leader's work: look again (taking the lease), fill, store.
  // `call`, when given, is sealed just before the value is stored.
  net::awaitable<Outcome> lead_fill(const Snapshot& s, cache::Store& store, const http::EntityRequest& req,
                                    const std::vector<std::string>& keys, bool redis_ok, LeaseMode mode,
                                    cache::Singleflight<Outcome>::Call* call = nullptr);
  // Reads PostgreSQL; with `begin` ok, the value is stored unless an
  // invalidation came after the fill began.
  net::awaitable<Outcome> fill_and_store(const Snapshot& s, cache::Store& store, const http::EntityRequest& req,
                                         const std::vector<std::string>& keys, const std::string& lease,
                                         const std::string& token, const cache::Begin& begin,
                                         cache::Singleflight<Outcome>::Call* call);
  net::awaitable<Outcome> fill(const http::EntityRequest& req, std::uint64_t start_us);
  // One background refresh per key per process (stale-while-revalidate, XFetch).
  void spawn_refresh(SnapshotPtr s, const http::EntityRequest& req, unsigned worker);
  net::awaitable<void> refresh(SnapshotPtr s, http::EntityRequest req, unsigned worker,
                               cache::Singleflight<Outcome>::CallPtr call);
  net::awaitable<http::Answer> invalidate(const Snapshot& s, const http::Invalidation& inv, unsigned worker);
  net::awaitable<http::Answer> readyz(const Snapshot& s);

  // Applies an invalidation; one that cannot reach Redis is queued.
  net::awaitable<void> apply_or_queue(SnapshotPtr s, http::Invalidation inv, unsigned worker, const char* source);
  // Invalidations that could not reach Redis wait here and are applied as
  // soon as Redis answers again (docs/invalidation.md, "Redis outages").
  void queue_invalidation(SnapshotPtr s, http::Invalidation inv);
  net::awaitable<void> replay_loop();
  void on_notification(const std::string& payload);
  void on_listening(bool first);
  net::awaitable<void> flush_listening(SnapshotPtr s, unsigned worker, bool first);
  unsigned next_worker();
  static SnapshotPtr make_snapshot(std::shared_ptr<const config::Config> cfg, std::uint64_t generation);

  std::string scrape_metrics(const Snapshot& s);
  // L1: stores a copy of a value just read from Redis or PostgreSQL.
  void l1_put(const config::Entity& e, const cache::NearCache::Ticket& t, const std::vector<std::string>& keys,
              const cache::ValueHeader& h, std::string_view body);
  // L1: what an invalidation of `keys` at `at_us` means for this process's copies.
  void l1_invalidate(const std::vector<std::string>& keys, std::uint64_t at_us);

  metrics::Metrics metrics_;
  SnapshotPtr snap_;  // std::atomic_load / std::atomic_store
  std::vector<net::io_context*> workers_;
  std::vector<std::shared_ptr<redis::Connection>> redis_;
  std::vector<cache::Store> stores_;  // one per worker, over redis_
  std::mutex fills_mu_;
  std::unordered_map<std::string, std::size_t> fills_in_flight_;  // by entity, for max_concurrent_fills
  pg::Pool pool_;
  cache::Singleflight<Outcome> flights_;
  redis::CircuitBreaker breaker_;
  std::mutex pending_mu_;
  std::deque<std::pair<SnapshotPtr, http::Invalidation>> pending_;
  bool pending_overflow_ = false;  // too many: everything is invalidated on recovery
  static constexpr std::size_t kMaxPending = 10000;
  std::shared_ptr<net::steady_timer> replay_timer_;
  std::unique_ptr<pg::Listener> listener_;
  std::atomic<bool> listener_flushed_{false};  // the first flush after LISTEN is done
  std::atomic<unsigned> round_robin_{0};
  // L1, when l1.max_bytes > 0; it serves only while l1_sub_ is subscribed.
  std::unique_ptr<cache::NearCache> l1_;
  std::shared_ptr<redis::Subscriber> l1_sub_;
  std::string l1_channel_;  // every process publishes its invalidations here
  std::atomic<bool> draining_{false};
};

}  // namespace sidecache::app

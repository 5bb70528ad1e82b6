#pragma once
// Prometheus metrics (prometheus-cpp core for the registry and the text
// format), served by our own HTTP server at GET /metrics. Labels keep
// cardinality bounded: entity, outcome and status class; tenant ids only on
// the per-tenant fill series, for the top metrics.top_tenants tenants
// (TenantTop).
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <map>
#include <unordered_map>
#include <vector>

#include "sidecache/metrics/tenant_top.hpp"

namespace prometheus {
class Registry;
class Counter;
class Histogram;
class Gauge;
template <typename T>
class Family;
}  // namespace prometheus

namespace sidecache::metrics {

// How an entity request was answered (the `outcome` label):
//   hit        a fresh value, from L1 or Redis
//   miss       filled from PostgreSQL by this request
//   stale      a value past its soft expiry (stale_while_revalidate, stale_if_error)
//   collapsed  another request's fill, shared
//   bypass     Cache-Control: no-cache, filled regardless of the cache
//   error      a 5xx that served nothing cached, or a 400 for a known entity
enum class Outcome { hit, miss, stale, collapsed, bypass, error };
const char* to_string(Outcome o);

// Values read at scrape time.
struct Snapshot {
  std::size_t pool_size = 0, pool_in_use = 0, pool_queued = 0;
  std::uint64_t pool_rejected = 0;
  std::size_t singleflight_waiters = 0;
  int breaker_state = 0;  // 0 closed, 1 half-open, 2 open
  std::uint64_t config_generation = 0;
  std::size_t pending_invalidations = 0;
  // L1 (when configured)
  bool l1 = false;
  bool l1_enabled = false;
  std::size_t l1_entries = 0, l1_bytes = 0, l1_max_bytes = 0;
  std::uint64_t l1_hits = 0, l1_misses = 0, l1_evictions = 0, l1_invalidated = 0, l1_refused = 0;
  // Read replicas: label ("replica0"), whether fills may use it, and its lag
  // in seconds (negative: not known).
  struct Replica {
    std::string label;
    bool usable = false;
    double lag_seconds = -1;
  };
  std::vector<Replica> replicas;
  std::uint64_t wal_position_reads = 0;  // queries for the primary's WAL position (with replicas)
  // Redis Cluster: each master's breaker (0 closed, 1 half-open, 2 open)
  // and how many of the workers' connections to it are up; the slots the
  // map gives a master.
  struct RedisNode {
    std::string address;
    int breaker_state = 0;
    std::size_t connections_up = 0;
  };
  std::vector<RedisNode> redis_nodes;
  std::size_t redis_slots_covered = 0;
  bool cluster = false;
};

class Metrics {
 public:
  Metrics();
  ~Metrics();

  // Creates an entity's series at 0 (every outcome, 2xx; errors, 5xx), so
  // alerts and rate() have data before the first request.
  void declare_entity(const std::string& entity);
  void request(const std::string& entity, Outcome outcome, unsigned status, double seconds);
  void fill(const std::string& entity, double seconds);
  void value_too_large(const std::string& entity);  // answered, not stored
  // A request led its fill without a lookup (the key was expected cold);
  // `was_cold`: the begin's look found no value to serve.
  void cold_look(const std::string& entity, bool was_cold);
  void redis_failure(const char* kind);  // timeout | unavailable | error | breaker_open | not_replicated
  void master_switch();                  // sentinel mode: +switch-master of our master
  void invalidation(const char* scope, const char* source);  // source: api | notify | listen | replay
  // Read replicas (postgres.replicas): declares their series at 0.
  void declare_replicas(const std::vector<std::string>& labels);
  void pg_fill(const std::string& target);  // a fill answered by "primary" or "replica<n>"
  void replica_wait(const std::string& replica, bool caught_up);  // a fill waited for it to replay far enough
  // A fill the replica did not answer, so the primary did: behind | unavailable | conflict.
  void replica_fallback(const std::string& replica, const char* reason);

  // Per-tenant fills and pool rejections (tenant: the id, or "(global)").
  void set_top_tenants(std::size_t n);  // before the first use
  void tenant_fill(std::string_view tenant) { tenants_->add(tenant, TenantTop::fill); }
  void tenant_rejection(std::string_view tenant) { tenants_->add(tenant, TenantTop::rejection); }
  // The staleness audit: a sampled hit re-read; one found stale, with how
  // long before the re-read its value was filled.
  void audit_check(const std::string& entity);
  void audit_stale(const std::string& entity, double age_seconds);
  // An audited hit that differed, with an invalidation covering it recorded
  // since: the write's invalidation was on its way when the hit was served.
  void audit_covered(const std::string& entity);
  // Sampled hits not audited: over audit.max_per_second or the backlog bound.
  void audit_skipped();

  // The text exposition format, with `now` applied to the gauges.
  std::string scrape(const Snapshot& now);

 private:
  prometheus::Counter& counter(prometheus::Family<prometheus::Counter>& f, const std::string& key,
                               const std::map<std::string, std::string>& labels);
  prometheus::Histogram& histogram(prometheus::Family<prometheus::Histogram>& f, const std::string& key,
                                   const std::map<std::string, std::string>& labels, const std::vector<double>& buckets);

  std::unique_ptr<prometheus::Registry> registry_;
  std::unique_ptr<TenantTop> tenants_;
  prometheus::Family<prometheus::Counter>* tenant_fills_;
  prometheus::Family<prometheus::Counter>* tenant_rejections_;
  std::vector<prometheus::Counter*> tenant_series_;  // exported at the last scrape
  prometheus::Family<prometheus::Counter>* audit_checks_;
  prometheus::Family<prometheus::Counter>* audit_stale_;
  prometheus::Family<prometheus::Counter>* audit_covered_;
  prometheus::Family<prometheus::Histogram>* audit_stale_age_;
  prometheus::Counter* audit_skipped_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* request_seconds_;
  prometheus::Family<prometheus::Histogram>* fill_seconds_;
  prometheus::Family<prometheus::Counter>* redis_failures_;
  prometheus::Counter* master_switches_;
  prometheus::Family<prometheus::Counter>* invalidations_;
  prometheus::Family<prometheus::Counter>* too_large_;
  prometheus::Family<prometheus::Counter>* cold_looks_;
  prometheus::Family<prometheus::Counter>* pool_rejections_;
  prometheus::Family<prometheus::Counter>* pg_fills_;
  prometheus::Family<prometheus::Counter>* replica_waits_;
  prometheus::Family<prometheus::Counter>* replica_fallbacks_;
  prometheus::Family<prometheus::Gauge>* replica_lag_;
  prometheus::Family<prometheus::Gauge>* replica_usable_;
  prometheus::Family<prometheus::Gauge>* node_breaker_;
  prometheus::Family<prometheus::Gauge>* node_up_;
  prometheus::Family<prometheus::Gauge>* slots_covered_;
  prometheus::Counter* wal_reads_ = nullptr;  // declared with the replicas
  std::uint64_t wal_reads_seen_ = 0;
  prometheus::Gauge* pool_size_;
  prometheus::Gauge* pool_in_use_;
  prometheus::Gauge* pool_queued_;
  prometheus::Gauge* waiters_;
  prometheus::Gauge* breaker_;
  prometheus::Gauge* generation_;
  prometheus::Gauge* pending_;
  std::uint64_t rejected_seen_ = 0;
  // L1: counters advance by what the cache counted since the last scrape.
  prometheus::Family<prometheus::Counter>* l1_lookups_ = nullptr;
  prometheus::Family<prometheus::Counter>* l1_dropped_ = nullptr;
  prometheus::Gauge* l1_entries_ = nullptr;
  prometheus::Gauge* l1_bytes_ = nullptr;
  prometheus::Gauge* l1_max_bytes_ = nullptr;
  prometheus::Gauge* l1_enabled_ = nullptr;
  std::uint64_t l1_seen_[5] = {0, 0, 0, 0, 0};
  void add_delta(prometheus::Counter& c, std::uint64_t now, std::uint64_t& seen);
  // Metric objects by label set, looked up under cache_mu_ the first time a
  // thread sees an entity; after that each thread uses its own copy of the
  // pointers (no lock on the hot path, none of prometheus-cpp's family lock).
  std::mutex cache_mu_;
  std::unordered_map<std::string, void*> cache_;
  std::mutex scrape_mu_;
  const std::uint64_t id_;  // tells a thread's cache of metric pointers which Metrics it belongs to
};

}  // namespace sidecache::metrics

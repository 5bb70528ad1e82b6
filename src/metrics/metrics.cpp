#include "sidecache/metrics/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "sidecache/version.hpp"

namespace sidecache::metrics {
namespace pm = prometheus;

const char* to_string(Outcome o) {
  switch (o) {
    case Outcome::hit: return "hit";
    case Outcome::miss: return "miss";
    case Outcome::stale: return "stale";
    case Outcome::collapsed: return "collapsed";
    case Outcome::bypass: return "bypass";
    case Outcome::error: return "error";
  }
  return "?";
}

namespace {
const pm::Histogram::BucketBoundaries kRequestBuckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                      0.01,   0.025,   0.05,   0.1,   0.25,   0.5, 1, 2.5, 5};
const pm::Histogram::BucketBoundaries kFillBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                   0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const pm::Histogram::BucketBoundaries kAgeBuckets{0.1, 1, 5, 15, 60, 300, 900, 3600, 14400, 86400};
std::string code_class(unsigned status) { return std::to_string(status / 100) + "xx"; }
}  // namespace

namespace {
std::atomic<std::uint64_t> next_metrics_id{1};

// Each worker thread keeps the metric objects it has used, by entity, so
// the hit path finds them without building label strings or taking a lock.
struct EntitySeries {
  pm::Counter* counters[6][6] = {};  // [outcome][status / 100]
  pm::Histogram* durations[6] = {};  // [outcome]
};
struct ThreadSeries {
  std::uint64_t owner = 0;
  std::unordered_map<std::string, EntitySeries> by_entity;
};
thread_local ThreadSeries t_series;
}  // namespace

Metrics::Metrics() : registry_(std::make_unique<pm::Registry>()), id_(next_metrics_id++) {
  auto& r = *registry_;
  requests_ = &pm::BuildCounter().Name("sidecache_requests_total")
                   .Help("Entity requests by entity, outcome (hit, miss, stale, collapsed, bypass, error) and status class")
                   .Register(r);
  request_seconds_ = &pm::BuildHistogram().Name("sidecache_request_duration_seconds")
                          .Help("Time to answer an entity request, by entity and outcome").Register(r);
  fill_seconds_ = &pm::BuildHistogram().Name("sidecache_fill_duration_seconds")
                       .Help("Time of one PostgreSQL fill (queue wait included), by entity").Register(r);
  redis_failures_ = &pm::BuildCounter().Name("sidecache_redis_failures_total")
                         .Help("Redis calls that failed, by kind (timeout, unavailable, error, breaker_open, not_replicated)").Register(r);
  master_switches_ = &pm::BuildCounter().Name("sidecache_redis_master_switches_total")
                          .Help("Sentinel mode: switches of the master heard from the sentinels (+switch-master)").Register(r).Add({});
  invalidations_ = &pm::BuildCounter().Name("sidecache_invalidations_total")
                        .Help("Invalidations applied, by scope and source (api, notify, listen, replay)").Register(r);
  too_large_ = &pm::BuildCounter().Name("sidecache_values_too_large_total")
                   .Help("Fills answered but not stored: the value was over max_value_bytes, by entity").Register(r);
  cold_looks_ = &pm::BuildCounter().Name("sidecache_cold_looks_total")
                    .Help("Requests that led a fill without a lookup first, because their worker's recent looks at the "
                          "entity mostly found nothing; key=cold when none was there, key=warm when a value was (the "
                          "guess was wrong: one script instead of one MGET)").Register(r);
  pool_rejections_ = &pm::BuildCounter().Name("sidecache_pg_pool_rejections_total")
                          .Help("Fills refused at once: queue full, PostgreSQL known down, or queue deadline").Register(r);
  pg_fills_ = &pm::BuildCounter().Name("sidecache_pg_fills_total")
                  .Help("Fills answered by PostgreSQL, by target (primary, replica0, ...)").Register(r);
  replica_waits_ = &pm::BuildCounter().Name("sidecache_pg_replica_waits_total")
                       .Help("Fills that waited for a replica to replay an invalidation's WAL position, by replica and outcome (caught_up, gave_up)").Register(r);
  replica_fallbacks_ = &pm::BuildCounter().Name("sidecache_pg_replica_fallbacks_total")
                           .Help("Fills a replica did not answer, run on the primary instead, by replica and reason (behind, unavailable, conflict)").Register(r);
  replica_lag_ = &pm::BuildGauge().Name("sidecache_pg_replica_lag_seconds")
                     .Help("How far each replica is behind the primary (-1: not known)").Register(r);
  replica_usable_ = &pm::BuildGauge().Name("sidecache_pg_replica_usable")
                        .Help("1 when fills may use the replica (streaming, within replica_max_lag)").Register(r);
  node_breaker_ = &pm::BuildGauge().Name("sidecache_redis_node_breaker_state")
                       .Help("Redis Cluster: each node's circuit breaker (0 closed, 1 half-open, 2 open)").Register(r);
  node_up_ = &pm::BuildGauge().Name("sidecache_redis_node_connections_up")
                  .Help("Redis Cluster: the workers' connections to each node that are up").Register(r);
  slots_covered_ = &pm::BuildGauge().Name("sidecache_redis_cluster_slots_covered")
                       .Help("Redis Cluster: the slots (of 16384) the slot map gives a master").Register(r);
  counter(*pg_fills_, "t|primary", {{"target", "primary"}});
  tenants_ = std::make_unique<TenantTop>(10);
  tenant_fills_ = &pm::BuildCounter().Name("sidecache_tenant_fills_total")
                       .Help("PostgreSQL fills by tenant, for the busiest metrics.top_tenants tenants (counted while among them); the rest under tenant=\"(other)\"").Register(r);
  tenant_rejections_ = &pm::BuildCounter().Name("sidecache_tenant_rejections_total")
                            .Help("Fills the pool refused at once (queue full, tenant's max_queued_fills, queue deadline, PostgreSQL down), by tenant as sidecache_tenant_fills_total").Register(r);
  audit_checks_ = &pm::BuildCounter().Name("sidecache_audit_checks_total")
                       .Help("Sampled hits re-read from PostgreSQL and compared with the bytes served, by entity").Register(r);
  audit_stale_ = &pm::BuildCounter().Name("sidecache_audit_stale_total")
                      .Help("Audited hits that differed from PostgreSQL with no invalidation covering them, by entity").Register(r);
  audit_covered_ = &pm::BuildCounter().Name("sidecache_audit_covered_total")
                        .Help("Audited hits that differed from PostgreSQL while an invalidation covering them was on its way (recorded within audit.grace), by entity").Register(r);
  audit_stale_age_ = &pm::BuildHistogram().Name("sidecache_audit_stale_age_seconds")
                          .Help("How long before the re-read a value found stale had been filled, by entity").Register(r);
  audit_skipped_ = &pm::BuildCounter().Name("sidecache_audit_skipped_total")
                        .Help("Sampled hits not audited: over audit.max_per_second or the audit backlog").Register(r).Add({});
  pool_size_ = &pm::BuildGauge().Name("sidecache_pg_pool_size").Help("PostgreSQL connections in the pool").Register(r).Add({});
  pool_in_use_ = &pm::BuildGauge().Name("sidecache_pg_pool_in_use").Help("PostgreSQL connections running a query").Register(r).Add({});
  pool_queued_ = &pm::BuildGauge().Name("sidecache_pg_pool_queue_length").Help("Fills waiting for a connection").Register(r).Add({});
  waiters_ = &pm::BuildGauge().Name("sidecache_singleflight_waiters").Help("Requests waiting for another request's fill").Register(r).Add({});
  breaker_ = &pm::BuildGauge().Name("sidecache_redis_breaker_state").Help("Redis circuit breaker: 0 closed, 1 half-open, 2 open").Register(r).Add({});
  generation_ = &pm::BuildGauge().Name("sidecache_config_generation").Help("Configuration generation: 1 at start, +1 per reload").Register(r).Add({});
  pending_ = &pm::BuildGauge().Name("sidecache_pending_invalidations").Help("Invalidations waiting for Redis").Register(r).Add({});
  pm::BuildGauge().Name("sidecache_build_info").Help("Build information").Register(r).Add({{"version", kVersion}}).Set(1);
  pool_rejections_->Add({});
  // Every series an alert or rate() may need exists from the start, at 0.
  for (const char* kind : {"timeout", "unavailable", "error", "breaker_open", "not_replicated"})
    counter(*redis_failures_, std::string("e|") + kind, {{"kind", kind}});
  for (const char* scope : {"key", "entity", "tenant", "entity_all_tenants"})
    for (const char* source : {"api", "notify", "listen", "replay"})
      counter(*invalidations_, std::string("i|") + scope + '|' + source, {{"scope", scope}, {"source", source}});
  l1_lookups_ = &pm::BuildCounter().Name("sidecache_l1_lookups_total")
                     .Help("L1 (in-process near cache) lookups by result (hit, miss)").Register(r);
  l1_dropped_ = &pm::BuildCounter().Name("sidecache_l1_dropped_total")
                     .Help("L1 copies dropped, by reason (evicted: the byte bound; invalidated; refused: a put that a newer invalidation or a lost subscription made stale)").Register(r);
  l1_entries_ = &pm::BuildGauge().Name("sidecache_l1_entries").Help("Entries in L1").Register(r).Add({});
  l1_bytes_ = &pm::BuildGauge().Name("sidecache_l1_bytes").Help("Bytes L1 holds, bookkeeping included").Register(r).Add({});
  l1_max_bytes_ = &pm::BuildGauge().Name("sidecache_l1_max_bytes").Help("l1.max_bytes (0: L1 off)").Register(r).Add({});
  l1_enabled_ = &pm::BuildGauge().Name("sidecache_l1_enabled")
                     .Help("1 while L1 serves: its invalidation subscription is up").Register(r).Add({});
}

void Metrics::add_delta(pm::Counter& c, std::uint64_t now, std::uint64_t& seen) {
  if (now > seen) c.Increment(static_cast<double>(now - seen));
  seen = now;
}

Metrics::~Metrics() = default;

pm::Counter& Metrics::counter(pm::Family<pm::Counter>& f, const std::string& key, const std::map<std::string, std::string>& labels) {
  std::lock_guard lock(cache_mu_);
  auto it = cache_.find(key);
  if (it != cache_.end()) return *static_cast<pm::Counter*>(it->second);
  auto& c = f.Add(labels);
  cache_.emplace(key, &c);
  return c;
}

pm::Histogram& Metrics::histogram(pm::Family<pm::Histogram>& f, const std::string& key,
                                 const std::map<std::string, std::string>& labels,
                                 const std::vector<double>& buckets) {
  std::lock_guard lock(cache_mu_);
  auto it = cache_.find(key);
  if (it != cache_.end()) return *static_cast<pm::Histogram*>(it->second);
  auto& h = f.Add(labels, buckets);
  cache_.emplace(key, &h);
  return h;
}

void Metrics::request(const std::string& entity, Outcome outcome, unsigned status, double seconds) {
  static_assert(static_cast<std::size_t>(Outcome::error) == 5, "EntitySeries holds six outcomes");
  if (t_series.owner != id_) {
    t_series.by_entity.clear();
    t_series.owner = id_;
  }
  auto it = t_series.by_entity.find(entity);
  if (it == t_series.by_entity.end()) it = t_series.by_entity.emplace(entity, EntitySeries{}).first;
  EntitySeries& es = it->second;
  auto o = static_cast<std::size_t>(outcome);
  std::size_t c = std::min<std::size_t>(status / 100, 5);
  if (!es.counters[o][c] || !es.durations[o]) {
    // First time on this thread: find (or make) the series once.
    std::string cls = code_class(status);
    const char* out = to_string(outcome);
    es.counters[o][c] = &counter(*requests_, "r|" + entity + '|' + out + '|' + cls,
                                 {{"entity", entity}, {"outcome", out}, {"code", cls}});
    es.durations[o] = &histogram(*request_seconds_, "h|" + entity + '|' + out, {{"entity", entity}, {"outcome", out}},
                                 kRequestBuckets);
  }
  es.counters[o][c]->Increment();
  es.durations[o]->Observe(seconds);
}

void Metrics::declare_entity(const std::string& entity) {
  for (Outcome o : {Outcome::hit, Outcome::miss, Outcome::stale, Outcome::collapsed, Outcome::bypass, Outcome::error}) {
    const char* out = to_string(o);
    std::string cls = o == Outcome::error ? "5xx" : "2xx";
    counter(*requests_, "r|" + entity + '|' + out + '|' + cls, {{"entity", entity}, {"outcome", out}, {"code", cls}});
    histogram(*request_seconds_, "h|" + entity + '|' + out, {{"entity", entity}, {"outcome", out}}, kRequestBuckets);
  }
  histogram(*fill_seconds_, "f|" + entity, {{"entity", entity}}, kFillBuckets);
  counter(*too_large_, "l|" + entity, {{"entity", entity}});
  counter(*cold_looks_, "k|" + entity, {{"entity", entity}, {"key", "cold"}});
  counter(*cold_looks_, "w|" + entity, {{"entity", entity}, {"key", "warm"}});
  counter(*audit_checks_, "a|" + entity, {{"entity", entity}});
  counter(*audit_stale_, "s|" + entity, {{"entity", entity}});
  counter(*audit_covered_, "c|" + entity, {{"entity", entity}});
  histogram(*audit_stale_age_, "g|" + entity, {{"entity", entity}}, kAgeBuckets);
}

void Metrics::value_too_large(const std::string& entity) {
  counter(*too_large_, "l|" + entity, {{"entity", entity}}).Increment();
}

void Metrics::cold_look(const std::string& entity, bool was_cold) {
  counter(*cold_looks_, (was_cold ? "k|" : "w|") + entity, {{"entity", entity}, {"key", was_cold ? "cold" : "warm"}})
      .Increment();
}

void Metrics::fill(const std::string& entity, double seconds) {
  histogram(*fill_seconds_, "f|" + entity, {{"entity", entity}}, kFillBuckets).Observe(seconds);
}

void Metrics::master_switch() { master_switches_->Increment(); }

void Metrics::redis_failure(const char* kind) {
  counter(*redis_failures_, std::string("e|") + kind, {{"kind", kind}}).Increment();
}

void Metrics::invalidation(const char* scope, const char* source) {
  counter(*invalidations_, std::string("i|") + scope + '|' + source, {{"scope", scope}, {"source", source}}).Increment();
}

void Metrics::declare_replicas(const std::vector<std::string>& labels) {
  wal_reads_ = &pm::BuildCounter().Name("sidecache_pg_wal_position_reads_total")
                    .Help("Queries for the primary's WAL position; one serves every invalidation that waited for it").Register(*registry_).Add({});
  for (const auto& l : labels) {
    counter(*pg_fills_, "t|" + l, {{"target", l}});
    for (const char* outcome : {"caught_up", "gave_up"})
      counter(*replica_waits_, "w|" + l + '|' + outcome, {{"replica", l}, {"outcome", outcome}});
    for (const char* reason : {"behind", "unavailable", "conflict"})
      counter(*replica_fallbacks_, "b|" + l + '|' + reason, {{"replica", l}, {"reason", reason}});
  }
}

void Metrics::set_top_tenants(std::size_t n) { tenants_ = std::make_unique<TenantTop>(n); }

void Metrics::audit_check(const std::string& entity) {
  counter(*audit_checks_, "a|" + entity, {{"entity", entity}}).Increment();
}

void Metrics::audit_stale(const std::string& entity, double age_seconds) {
  counter(*audit_stale_, "s|" + entity, {{"entity", entity}}).Increment();
  histogram(*audit_stale_age_, "g|" + entity, {{"entity", entity}}, kAgeBuckets).Observe(age_seconds);
}

void Metrics::audit_covered(const std::string& entity) {
  counter(*audit_covered_, "c|" + entity, {{"entity", entity}}).Increment();
}

void Metrics::audit_skipped() { audit_skipped_->Increment(); }

void Metrics::pg_fill(const std::string& target) { counter(*pg_fills_, "t|" + target, {{"target", target}}).Increment(); }

void Metrics::replica_wait(const std::string& replica, bool caught_up) {
  const char* outcome = caught_up ? "caught_up" : "gave_up";
  counter(*replica_waits_, "w|" + replica + '|' + outcome, {{"replica", replica}, {"outcome", outcome}}).Increment();
}

void Metrics::replica_fallback(const std::string& replica, const char* reason) {
  counter(*replica_fallbacks_, "b|" + replica + '|' + reason, {{"replica", replica}, {"reason", reason}}).Increment();
}

std::string Metrics::scrape(const Snapshot& now) {
  std::lock_guard lock(scrape_mu_);
  pool_size_->Set(static_cast<double>(now.pool_size));
  pool_in_use_->Set(static_cast<double>(now.pool_in_use));
  pool_queued_->Set(static_cast<double>(now.pool_queued));
  waiters_->Set(static_cast<double>(now.singleflight_waiters));
  breaker_->Set(now.breaker_state);
  generation_->Set(static_cast<double>(now.config_generation));
  pending_->Set(static_cast<double>(now.pending_invalidations));
  if (now.pool_rejected > rejected_seen_) {
    pool_rejections_->Add({}).Increment(static_cast<double>(now.pool_rejected - rejected_seen_));
    rejected_seen_ = now.pool_rejected;
  }
  if (wal_reads_) add_delta(*wal_reads_, now.wal_position_reads, wal_reads_seen_);
  if (now.cluster) slots_covered_->Add({}).Set(static_cast<double>(now.redis_slots_covered));
  for (const auto& n : now.redis_nodes) {
    node_breaker_->Add({{"node", n.address}}).Set(n.breaker_state);
    node_up_->Add({{"node", n.address}}).Set(static_cast<double>(n.connections_up));
  }
  for (const auto& rep : now.replicas) {
    replica_lag_->Add({{"replica", rep.label}}).Set(rep.lag_seconds);
    replica_usable_->Add({{"replica", rep.label}}).Set(rep.usable ? 1 : 0);
  }
  if (now.l1) {
    add_delta(l1_lookups_->Add({{"result", "hit"}}), now.l1_hits, l1_seen_[0]);
    add_delta(l1_lookups_->Add({{"result", "miss"}}), now.l1_misses, l1_seen_[1]);
    add_delta(l1_dropped_->Add({{"reason", "evicted"}}), now.l1_evictions, l1_seen_[2]);
    add_delta(l1_dropped_->Add({{"reason", "invalidated"}}), now.l1_invalidated, l1_seen_[3]);
    add_delta(l1_dropped_->Add({{"reason", "refused"}}), now.l1_refused, l1_seen_[4]);
    l1_entries_->Set(static_cast<double>(now.l1_entries));
    l1_bytes_->Set(static_cast<double>(now.l1_bytes));
    l1_max_bytes_->Set(static_cast<double>(now.l1_max_bytes));
    l1_enabled_->Set(now.l1_enabled ? 1 : 0);
  }
  // The exported tenants are chosen again; their series are made afresh
  // with exact counts (a counter only grows, so set means remove and add).
  for (std::size_t i = 0; i < tenant_series_.size(); ++i)
    (i % 2 ? tenant_rejections_ : tenant_fills_)->Remove(tenant_series_[i]);
  tenant_series_.clear();
  for (const auto& row : tenants_->rows()) {
    for (int k = 0; k < 2; ++k) {
      pm::Counter& c = (k ? tenant_rejections_ : tenant_fills_)->Add({{"tenant", row.tenant}});
      c.Increment(static_cast<double>(row.counts[k]));
      tenant_series_.push_back(&c);
    }
  }
  return pm::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace sidecache::metrics

// What the daemon says about itself: /readyz and the gauges of /metrics.
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <set>

#include "sidecache/app/service.hpp"

namespace sidecache::app {

std::string Service::scrape_metrics(const Snapshot& s) {
  metrics::Snapshot now;
  pg::PoolStats ps = pool_.stats();
  now.pool_size = ps.size;
  now.pool_in_use = ps.in_use;
  now.pool_queued = ps.queued;
  now.pool_rejected = ps.rejected;
  now.singleflight_waiters = reads_->waiting();
  auto b = breaker_.state();
  now.breaker_state = b == redis::CircuitBreaker::State::closed ? 0 : b == redis::CircuitBreaker::State::half_open ? 1 : 2;
  now.config_generation = s.generation;
  if (l1_) {
    cache::NearCache::Stats st = l1_->stats();
    now.l1 = true;
    now.l1_enabled = st.enabled;
    now.l1_entries = st.entries;
    now.l1_bytes = st.bytes;
    now.l1_max_bytes = l1_->max_bytes();
    now.l1_hits = st.hits;
    now.l1_misses = st.misses;
    now.l1_evictions = st.evictions;
    now.l1_invalidated = st.invalidated;
    now.l1_refused = st.refused_puts;
  }
  now.pending_invalidations = invalidator_->pending();
  now.wal_position_reads = replicas_.wal().queries();
  for (const auto& r : replicas_.all()) {
    pg::Replica::Status st = r->status();
    now.replicas.push_back({r->label(), st.state == pg::Replica::State::up,
                            st.lag ? std::chrono::duration<double>(*st.lag).count() : -1.0});
  }
  return metrics_.scrape(now);
}

net::awaitable<http::Answer> Service::readyz(const Snapshot& s) {
  const config::Config& cfg = *s.cfg;
  pg::Statement ping_statement{"", "", false, true};
  std::vector<std::string> no_args;
  pg::FillResult ping = co_await pool_.async_run(std::move(ping_statement), std::move(no_args), net::use_awaitable);
  std::size_t redis_up = 0;
  for (auto& r : redis_)
    if (r->state() == redis::State::connected) ++redis_up;
  namespace json = boost::json;
  bool pg_up = ping.status == pg::FillResult::Status::ok;
  bool ready = pg_up && !draining_;
  json::object o;
  o["ready"] = ready;
  o["config"] = "loaded";
  o["config_generation"] = s.generation;
  if (draining_) o["draining"] = true;
  o["entities"] = cfg.entities.size();
  // Entities whose SQL PostgreSQL refused (checked at start on every pool
  // connection): their reads answer 500 until the file is fixed and reloaded.
  if (auto failing = pool_.failing_entities(); !failing.empty()) {
    json::array errors;
    for (const auto& [name, error] : failing) errors.push_back(json::object{{"entity", name}, {"error", error}});
    o["entity_errors"] = std::move(errors);
  }
  json::object pg{{"state", pg_up ? "up" : "down"}};
  if (!pg_up) pg["message"] = ping.message;
  if (!replicas_.empty()) {
    // Replicas never decide readiness: without them fills use the primary.
    json::array reps;
    for (const auto& r : replicas_.all()) {
      pg::Replica::Status st = r->status();
      json::object one{{"name", r->label()}, {"dsn", r->name()}, {"state", pg::to_string(st.state)},
                       {"replayed", pg::format_lsn(st.replayed)}};
      if (st.lag) one["lag_ms"] = st.lag->count();
      reps.push_back(std::move(one));
    }
    pg["replicas"] = std::move(reps);
  }
  o["postgres"] = std::move(pg);
  // Where the connections are (sentinel mode: the master they found).
  std::set<std::string> servers;
  for (const auto& r : redis_)
    if (r->state() == redis::State::connected) servers.insert(r->address());
  json::array at(servers.begin(), servers.end());
  o["redis"] = json::object{{"state", redis_up == redis_.size() ? "up" : redis_up == 0 ? "down" : "degraded"},
                            {"servers", std::move(at)},
                            {"connections_up", redis_up},
                            {"connections", redis_.size()},
                            {"tls", cfg.redis.tls()},
                            {"breaker", redis::to_string(breaker_.state())},
                            {"pending_invalidations", invalidator_->pending()}};
  std::string listener = "off";
  if (listener_) {
    auto st = listener_->state();
    listener = st == pg::Listener::State::listening && !listener_flushed_ ? "connecting" : pg::to_string(st);
  }
  o["invalidation_listener"] = json::object{{"state", listener}, {"channel", cfg.invalidation.channel}};
  if (l1_) {
    cache::NearCache::Stats st = l1_->stats();
    o["l1"] = json::object{{"state", st.enabled ? "on" : "off"},
                           {"channel", l1_channel_},
                           {"entries", st.entries},
                           {"bytes", st.bytes},
                           {"max_bytes", l1_->max_bytes()}};
  }
  http::Answer a;
  a.status = ready ? 200 : 503;
  a.body = json::serialize(o);
  if (!ready) a.headers.emplace_back("Retry-After", "1");
  co_return a;
}

}  // namespace sidecache::app

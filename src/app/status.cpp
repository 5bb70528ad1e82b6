// What the daemon says about itself: /readyz and the gauges of /metrics.
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <map>
#include <set>

#include "sidecache/app/service.hpp"

namespace sidecache::app {

namespace {
int breaker_number(redis::CircuitBreaker::State b) {
  return b == redis::CircuitBreaker::State::closed ? 0 : b == redis::CircuitBreaker::State::half_open ? 1 : 2;
}
}  // namespace

std::vector<metrics::Snapshot::RedisNode> Service::cluster_nodes() const {
  std::map<std::string, metrics::Snapshot::RedisNode> by;
  if (!cluster_) return {};
  if (auto map = cluster_->map())
    for (const auto& n : map->nodes()) by[cluster_->node_config(n).endpoint()].address = cluster_->node_config(n).endpoint();
  for (const auto& c : cluster_clients_)
    for (const auto& [address, state] : c->nodes()) {
      by[address].address = address;
      if (state == redis::State::connected) ++by[address].connections_up;
    }
  for (const auto& [address, state] : cluster_->breakers()) {
    by[address].address = address;
    by[address].breaker_state = breaker_number(state);
  }
  std::vector<metrics::Snapshot::RedisNode> out;
  for (auto& [a, n] : by) out.push_back(std::move(n));
  return out;
}

std::string Service::scrape_metrics(const Snapshot& s) {
  metrics::Snapshot now;
  pg::PoolStats ps = pool_.stats();
  now.pool_size = ps.size;
  now.pool_in_use = ps.in_use;
  now.pool_queued = ps.queued;
  now.pool_rejected = ps.rejected;
  now.singleflight_waiters = reads_->waiting();
  now.breaker_state = breaker_number(breaker_.state());
  if (cluster_) {
    now.cluster = true;
    now.redis_nodes = cluster_nodes();
    auto map = cluster_->map();
    now.redis_slots_covered = map ? map->covered() : 0;
  }
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

boost::json::object Service::cluster_status(const config::Config& cfg) const {
  namespace json = boost::json;
  auto map = cluster_->map();
  const std::size_t covered = map ? map->covered() : 0;
  json::array nodes;
  bool all_up = true;
  const std::size_t workers = cluster_clients_.size();
  for (const auto& n : cluster_nodes()) {
    static const char* const kBreaker[] = {"closed", "half_open", "open"};
    bool master = false;
    if (map)
      for (const auto& m : map->nodes()) master = master || cluster_->node_config(m).endpoint() == n.address;
    if (!master) continue;  // a node it no longer routes to
    all_up = all_up && n.breaker_state == 0;
    nodes.push_back(json::object{{"address", n.address},
                                 {"breaker", kBreaker[n.breaker_state]},
                                 {"connections_up", n.connections_up}});
  }
  // Degraded: some slots (a node's, or those without a master) read
  // PostgreSQL; down: no map, so every read does.
  const char* state = covered == 0 ? "down" : covered == redis::kSlots && all_up ? "up" : "degraded";
  json::object out{{"state", state},
                   {"mode", "cluster"},
                   {"slots_covered", covered},
                   {"nodes", std::move(nodes)},
                   {"clients", workers},
                   {"map_refreshes", cluster_->refreshes()},
                   {"tls", cfg.redis.tls()},
                   {"pending_invalidations", invalidator_->pending()}};
  if (std::string e = cluster_->last_error(); !e.empty()) out["map_error"] = e;
  return out;
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
  if (cluster_) {
    o["redis"] = cluster_status(cfg);
  } else {
    o["redis"] = json::object{{"state", redis_up == redis_.size() ? "up" : redis_up == 0 ? "down" : "degraded"},
                              {"servers", std::move(at)},
                              {"connections_up", redis_up},
                              {"connections", redis_.size()},
                              {"tls", cfg.redis.tls()},
                              {"breaker", redis::to_string(breaker_.state())},
                              {"pending_invalidations", invalidator_->pending()}};
  }
  std::string listener = "off";
  if (listener_) {
    auto st = listener_->state();
    // Listening: "connecting" while the first flush at LISTEN is tried,
    // "flushing" while a flush waits for Redis to take it.
    if (st == pg::Listener::State::listening && flushes_waiting_ > 0) listener = "flushing";
    else if (st == pg::Listener::State::listening && !listener_flushed_) listener = "connecting";
    else listener = pg::to_string(st);
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

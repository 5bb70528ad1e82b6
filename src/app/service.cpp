#include "sidecache/app/service.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <future>
#include <spdlog/spdlog.h>

#include "sidecache/cache/key.hpp"
#include "sidecache/cache/notification.hpp"
#include "sidecache/cache/random.hpp"
#include "sidecache/config/text.hpp"

namespace sidecache::app {

using http::Answer;
using Clock = std::chrono::steady_clock;

namespace {

// The caller's X-Request-Id when it is a sane token (1..128 of
// [A-Za-z0-9._:-]), else a fresh random one.
std::string request_id_of(std::string_view given) {
  bool ok = !given.empty() && given.size() <= 128 && std::all_of(given.begin(), given.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-';
  });
  if (ok) return std::string(given);
  std::string id;
  config::append_hex(id, cache::random_u64());
  return id;
}

// "/v1/entities/user?x" -> "user"
std::string entity_of(std::string_view target) {
  static constexpr std::string_view kPrefix = "/v1/entities/";
  if (target.substr(0, kPrefix.size()) != kPrefix) return {};
  std::string_view rest = target.substr(kPrefix.size());
  return std::string(rest.substr(0, rest.find_first_of("?/")));
}

std::vector<cache::Store*> store_pointers(const std::vector<std::unique_ptr<cache::RedisStore>>& stores) {
  std::vector<cache::Store*> out;
  for (const auto& s : stores) out.push_back(s.get());
  return out;
}

}  // namespace

Service::Service(std::shared_ptr<const config::Config> cfg, std::vector<net::io_context*> workers)
    : snap_(cache::make_snapshot(cfg, 1)), workers_(std::move(workers)), pool_(cfg->postgres, pg::Pool::Role::primary, cfg->tenants),
      replicas_(cfg->postgres, cfg->tenants),
      wal_position_(replicas_.wal()), filler_(pool_, &replicas_, &metrics_),
      breaker_({cfg->redis.breaker_failures, cfg->redis.breaker_open_timeout, cfg->redis.breaker_half_open_probes},
               [](redis::CircuitBreaker::State from, redis::CircuitBreaker::State to) {
                 spdlog::warn("redis: circuit breaker {} -> {}{}", redis::to_string(from), redis::to_string(to),
                              to == redis::CircuitBreaker::State::open ? " (reads go straight to PostgreSQL)" : "");
               }) {
  l1_channel_ = cache::l1_channel(cfg->key_prefix);
  if (cfg->l1.enabled()) {
    // An invalidation is remembered longer than any L1 copy lives and than
    // any fill may take (max_fill_age), with a margin.
    auto horizon = std::chrono::duration_cast<std::chrono::milliseconds>(
        config::kMaxL1Ttl + std::chrono::microseconds(snap_->max_fill_age_us) + std::chrono::seconds(10));
    l1_ = std::make_unique<cache::NearCache>(cfg->l1.max_bytes, horizon, cfg->l1.max_tenant_share);
  }
  for (std::size_t i = 0; i < workers_.size(); ++i) stores_.push_back(redis_store(i, std::to_string(i)));
  metrics_.set_top_tenants(cfg->metrics.top_tenants);
  for (const auto& e : cfg->entities) metrics_.declare_entity(e.name);
  auditor_ = std::make_unique<cache::Auditor>(store_pointers(stores_), filler_, &metrics_);
  reads_ = std::make_unique<cache::ReadPath>(store_pointers(stores_), filler_, l1_.get(), &metrics_);
  reads_->set_auditor(auditor_.get());
  // With invalidation_replicas, invalidations run on connections of their
  // own: WAIT blocks its connection until the replicas answer, and reads
  // must not queue behind it.
  std::vector<cache::Store*> inval_stores = store_pointers(stores_);
  if (cfg->redis.invalidation_replicas > 0) {
    inval_stores.clear();
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      inval_stores_.push_back(redis_store(i, "inv" + std::to_string(i)));
      inval_stores.push_back(inval_stores_.back().get());
    }
  }
  invalidator_ = std::make_unique<cache::Invalidator>(inval_stores, l1_.get(), l1_channel_, &metrics_);
  invalidator_->on_applied([r = reads_.get()] { r->invalidation_answered(); });
  if (!replicas_.empty()) {
    invalidator_->record_wal_positions(&wal_position_);
    std::vector<std::string> labels;
    for (const auto& r : replicas_.all()) labels.push_back(r->label());
    metrics_.declare_replicas(labels);
  }
}

std::vector<config::RedisConfig> Service::cluster_seeds() const {
  const config::RedisConfig& r = current()->cfg->redis;
  std::vector<config::RedisConfig> out(1, r.at(r.host, r.port));
  for (const auto& n : r.nodes) out.push_back(r.at(n.host, n.port));
  return out;
}

std::unique_ptr<cache::RedisStore> Service::redis_store(std::size_t worker, const std::string& name) {
  const config::RedisConfig& r = current()->cfg->redis;
  if (r.mode == config::RedisMode::cluster) {
    if (!cluster_) {
      std::vector<redis::Node> seeds;
      for (const auto& s : cluster_seeds()) seeds.push_back(redis::Node{s.host, s.port});
      cluster_ = std::make_shared<redis::ClusterTopology>(workers_[0]->get_executor(), r, std::move(seeds));
    }
    cluster_clients_.push_back(std::make_shared<redis::ClusterClient>(workers_[worker]->get_executor(), r, name, cluster_));
    // Each node has its own breaker (in the topology): no process-wide one.
    return std::make_unique<cache::RedisStore>(cluster_clients_.back(), nullptr, &metrics_);
  }
  redis_.push_back(std::make_shared<redis::Connection>(workers_[worker]->get_executor(), current()->cfg->redis, name));
  redis_.back()->set_may_reconnect([this] { return breaker_.state() == redis::CircuitBreaker::State::closed; });
  return std::make_unique<cache::RedisStore>(redis_.back(), &breaker_, &metrics_);
}

Service::~Service() {
  replicas_.stop();
  pool_.stop();
}

void Service::start() {
  std::vector<pg::Statement> warm;
  for (const auto& e : current()->cfg->entities) {
    warm.push_back(cache::statement_of(e));
    if (e.batch) warm.push_back(cache::batch_statement_of(e));
  }
  // PostgreSQL's connections run on the workers' own loops: a fill's query
  // and its answer cost no thread hand-off (docs/architecture.md).
  std::vector<net::any_io_executor> executors;
  for (auto* w : workers_) executors.push_back(w->get_executor());
  replicas_.start(warm, executors);
  pool_.start(std::move(warm), executors);
  for (auto& r : redis_) net::post(r->executor(), [r] { r->start(); });
  if (cluster_) cluster_->refresh("starting");
  replay_timer_ = std::make_shared<net::steady_timer>(workers_[0]->get_executor());
  if (l1_) {
    // L1 serves only while this subscription is up: a lost subscription may
    // have lost invalidations, so L1 is flushed and stays off until it is back.
    l1_sub_ = std::make_shared<redis::Subscriber>(
        workers_[0]->get_executor(), current()->cfg->redis, l1_channel_,
        [this](std::string_view payload) {
          auto m = cache::parse_l1_message(payload);
          if (!m) {
            spdlog::warn("l1: ignoring a malformed message on {}", l1_channel_);
            return;
          }
          auto now = cache::NearCache::Clock::now();
          for (auto k : m->keys) l1_->invalidate(k, m->at_us, now);
        },
        [this](bool up) {
          if (up) {
            l1_->enable();
            spdlog::info("l1: on ({} bytes at most)", l1_->max_bytes());
          } else {
            l1_->disable();
            spdlog::warn("l1: flushed and off until the invalidation subscription is back");
          }
        });
    // On a cluster any node relays every message (PUBLISH reaches the whole
    // cluster): the seeds are tried in turn, moving on after a loss.
    if (cluster_) l1_sub_->rotate_through(cluster_seeds(), "cluster node");
    net::post(l1_sub_->executor(), [sub = l1_sub_] { sub->start(); });
  }
  if (current()->cfg->redis.mode == config::RedisMode::sentinel) {
    // A switch moves every connection still open to the old master, which
    // may live on as a replica and would go on answering reads.
    sentinel_watch_ = std::make_unique<redis::SentinelWatch>(
        workers_[0]->get_executor(), current()->cfg->redis, [this](const std::string& what) {
          spdlog::warn("redis: the sentinels switched master '{}': {}", current()->cfg->redis.master_name, what);
          metrics_.master_switch();
          std::string why = "the master moved (" + what + ")";
          for (auto& r : redis_) net::post(r->executor(), [r, why] { r->reconnect(why); });
          if (l1_sub_) net::post(l1_sub_->executor(), [sub = l1_sub_, why] { sub->reconnect(why); });
        });
    net::post(workers_[0]->get_executor(), [w = sentinel_watch_.get()] { w->start(); });
  }
  net::co_spawn(workers_[0]->get_executor(),
                invalidator_->replay_loop(
                    replay_timer_, [this] { return breaker_.state() == redis::CircuitBreaker::State::open; },
                    [this] { return current(); }),
                net::detached);
  const config::Config& cfg = *current()->cfg;
  if (cfg.listens()) {
    listener_ = std::make_unique<pg::Listener>(
        cfg.postgres, cfg.invalidation.channel, [this](const std::string& p) { on_notification(p); },
        [this](bool first) { return on_listening(first); });
    listener_->start();
  }
}

void Service::stop() {
  // Runs `fn` on `ex` and waits for it (bounded).
  auto on = [](const net::any_io_executor& ex, std::function<void()> fn) {
    std::promise<void> done;
    net::post(ex, [&] {
      fn();
      done.set_value();
    });
    done.get_future().wait_for(std::chrono::seconds(2));
  };
  if (listener_) listener_->stop();
  if (replay_timer_) on(workers_[0]->get_executor(), [this] { replay_timer_->cancel(); });
  if (l1_sub_) on(l1_sub_->executor(), [this] { l1_sub_->stop(); });
  if (sentinel_watch_) on(workers_[0]->get_executor(), [this] { sentinel_watch_->stop(); });
  for (auto& r : redis_) on(r->executor(), [&r] { r->stop(); });
  for (auto& c : cluster_clients_) on(c->executor(), [&c] { c->stop(); });
  replicas_.stop();
  pool_.stop();
}

unsigned Service::next_worker() { return round_robin_++ % static_cast<unsigned>(workers_.size()); }

void Service::on_notification(const std::string& payload) {
  SnapshotPtr snap = current();
  std::string error;
  auto invs = cache::invalidations_for(*snap->cfg, payload, error);
  if (!error.empty()) {
    spdlog::warn("postgres: ignoring a notification on {}: {}", snap->cfg->invalidation.channel, error);
    return;
  }
  for (auto& inv : invs) {
    inv.attach(snap);
    unsigned w = next_worker();
    net::co_spawn(workers_[w]->get_executor(), invalidator_->apply_or_queue(std::move(inv), w, cache::Source::notify), net::detached);
  }
}

bool Service::on_listening(bool first) {
  SnapshotPtr snap = current();
  if (!snap->cfg->invalidation.flush_on_listen) {
    listener_flushed_ = true;
    return false;
  }
  // Notifications sent while nobody listened are lost: every entity that
  // relies on them is invalidated as of now.
  unsigned w = next_worker();
  net::co_spawn(workers_[w]->get_executor(), flush_listening(std::move(snap), w, first), net::detached);
  return true;
}

net::awaitable<void> Service::flush_listening(SnapshotPtr snap, unsigned worker, bool first) {
  // Not queued for the replay like other invalidations: retried until it
  // takes effect, so /readyz can say when it has ("flushing" until then).
  bool waited = false;
  auto waits = [&] {
    if (waited) return;
    spdlog::warn("postgres: the flush at LISTEN cannot reach Redis; it is retried every {} ms until it takes effect",
                 cache::Invalidator::kRetryEvery.count());
    ++flushes_waiting_;
    waited = true;
  };
  for (const auto& e : snap->cfg->entities) {
    if (e.invalidate_on.empty()) continue;
    // (A named variable, not a temporary inside co_await: gcc 12 mishandles
    // those in coroutines.)
    cache::Invalidation inv = cache::whole_entity(e);
    inv.attach(snap);
    co_await invalidator_->apply_until_applied(inv, worker, cache::Source::listen, waits);
  }
  if (waited) spdlog::info("postgres: the flush at LISTEN took effect (Redis answered again)");
  else if (first) spdlog::info("postgres: entities with invalidate_on were flushed at LISTEN");
  listener_flushed_ = true;
  if (waited) --flushes_waiting_;
}

net::awaitable<Answer> Service::handle(http::Request req) {
  auto started = Clock::now();
  // The request keeps this snapshot to the end, whatever a reload does.
  SnapshotPtr snap = current();
  http::Route r;
  if (auto denied = http::check_auth(*snap->cfg, req.target, req.authorization)) r.answer = std::move(*denied);
  else r = http::route(*snap->cfg, req.method, req.target, req.body);
  Answer a;
  std::optional<metrics::Outcome> outcome;  // entity reads: how it was answered
  switch (r.kind) {
    case http::Route::Kind::entity_get: {
      r.request.snapshot = snap;
      cache::ReadResult got = co_await reads_->get(r.request, req.no_cache, req.worker);
      outcome = cache::outcome_of(got);
      a.status = got.status;
      a.body = std::move(got.body);
      a.headers.emplace_back("Cache-Status", cache::cache_status(got));
      if (got.age_s) a.headers.emplace_back("Age", std::to_string(*got.age_s));
      if (got.retry) a.headers.emplace_back("Retry-After", "1");
      break;
    }
    case http::Route::Kind::invalidate:
      r.invalidation.attach(snap);
      a = co_await invalidate(std::move(r.invalidation), req.worker);
      break;
    case http::Route::Kind::batch: a = co_await batch(std::move(r.batch), snap, req.worker, started); break;
    case http::Route::Kind::entity_list: a.body = http::entity_list_json(*snap->cfg); break;
    case http::Route::Kind::healthz: a.body = R"({"status":"ok"})"; break;
    case http::Route::Kind::readyz: a = co_await readyz(*snap); break;
    case http::Route::Kind::metrics:
      a.body = scrape_metrics(*snap);
      a.content_type = "text/plain; version=0.0.4; charset=utf-8";
      break;
    case http::Route::Kind::answer: a = std::move(r.answer); break;
  }
  // Requests for a known entity are counted by outcome; a refused request
  // (400) for a known entity counts as an error.
  const config::Entity* counted = r.kind == http::Route::Kind::entity_get ? r.request.entity
                                  : r.kind == http::Route::Kind::answer && a.status == 400
                                      ? snap->cfg->find_entity(entity_of(req.target))
                                      : nullptr;
  if (counted)
    metrics_.request(counted->name, outcome.value_or(metrics::Outcome::error), a.status,
                     std::chrono::duration<double>(Clock::now() - started).count());
  std::string rid = request_id_of(req.request_id);
  // One line per request: at info with access_log on, else at debug.
  auto level = snap->cfg->access_log ? spdlog::level::info : spdlog::level::debug;
  if (spdlog::should_log(level)) {
    const std::string* cs = a.header("Cache-Status");
    spdlog::log(level, "request_id={} {} {} -> {} [{}] {}us", rid, req.method, req.target, a.status, cs ? *cs : "-",
                std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count());
  }
  a.headers.emplace_back("X-Request-Id", std::move(rid));
  co_return a;
}

net::awaitable<Answer> Service::batch(std::vector<http::Route::BatchItem> items, SnapshotPtr snap, unsigned worker,
                                      Clock::time_point started) {
  std::vector<cache::EntityRequest> reads;
  for (auto& item : items)
    if (item.request) {
      item.request->snapshot = snap;
      reads.push_back(*item.request);
    }
  std::vector<cache::ReadResult> got = co_await reads_->get_many(std::move(reads), worker);
  double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  // {"results":[...]}: each value's stored bytes go in as they are.
  std::string body = R"({"results":[)";
  std::size_t next = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) body += ',';
    if (!items[i].request) {
      body += R"({"status":)" + std::to_string(items[i].error.status) + R"(,"error":)" + items[i].error.body + '}';
      continue;
    }
    cache::ReadResult& r = got[next++];
    metrics_.request(items[i].request->entity->name, cache::outcome_of(r), r.status, seconds);
    body += R"({"status":)" + std::to_string(r.status) + R"(,"cache":)" +
            boost::json::serialize(boost::json::string(cache::cache_status_detail(r)));
    body += r.status == 200 ? R"(,"body":)" : R"(,"error":)";
    body += r.body;
    body += '}';
  }
  body += "]}";
  Answer a;
  a.body = std::move(body);
  co_return a;
}

net::awaitable<Answer> Service::invalidate(cache::Invalidation inv, unsigned worker) {
  std::optional<std::uint64_t> at = co_await invalidator_->apply(inv, worker, cache::Source::api);
  if (!at) {
    // Applied as soon as Redis answers again, in case the caller gives up;
    // the caller is told it did not take effect yet. The invalidation
    // keeps its own snapshot alive until then.
    invalidator_->queue(std::move(inv));
    Answer a = http::error_answer(503, "unavailable",
                                  "Redis could not be reached: the invalidation has not taken effect yet; it is queued "
                                  "and applied when Redis is back, retry it to be sure");
    a.headers.emplace_back("Retry-After", "1");
    co_return a;
  }
  namespace json = boost::json;
  json::object o;
  o["invalidated"] = cache::to_string(inv.scope);
  if (inv.entity) o["entity"] = inv.entity->name;
  if (!inv.tenant.empty()) o["tenant"] = inv.tenant;
  if (inv.scope == cache::Invalidation::Scope::key) o["key"] = inv.request.key;
  if (inv.scope == cache::Invalidation::Scope::tag) o["tag"] = inv.tag;
  o["at_us"] = *at;
  Answer a;
  a.body = json::serialize(o);
  co_return a;
}

}  // namespace sidecache::app

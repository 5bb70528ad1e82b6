#include "sidecache/app/service.hpp"

#include "sidecache/app/notify.hpp"
#include "sidecache/cache/early_refresh.hpp"
#include "sidecache/cache/key.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <future>
#include <random>

namespace sidecache::app {

using http::Answer;
using Clock = std::chrono::steady_clock;

namespace {

std::uint64_t unix_us() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

// TTL plus a random share of ttl * jitter, so keys filled together do not
// expire together.
std::chrono::microseconds jittered(std::chrono::microseconds ttl, double jitter) {
  if (jitter <= 0) return ttl;
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> d(0.0, jitter);
  return ttl + std::chrono::microseconds(static_cast<std::int64_t>(static_cast<double>(ttl.count()) * d(rng)));
}

Answer not_found_answer(const config::Entity& e) {
  return http::error_answer(404, "not_found", "no " + e.name + " matches these parameters", {{"entity", e.name}});
}

// Turns a shared outcome into an answer with the given Cache-Status.
Answer answer_of(const Outcome& o, std::string body, std::string cache_status) {
  Answer a;
  a.status = o.status;
  a.body = std::move(body);
  a.headers.emplace_back("Cache-Status", std::move(cache_status));
  if (!o.retry_after.empty()) a.headers.emplace_back("Retry-After", o.retry_after);
  return a;
}

// A cached value's answer (a cached 404 too), with its Age.
Answer hit_answer(const config::Entity& e, const cache::ValueHeader& h, std::string body, std::uint64_t now,
                  std::string cache_status = "sidecache; hit") {
  Answer a = h.negative() ? not_found_answer(e) : Answer{};
  if (!h.negative()) a.body = std::move(body);
  a.headers.emplace_back("Cache-Status", std::move(cache_status));
  std::uint64_t age = now > h.created_us ? (now - h.created_us) / 1000000 : 0;
  a.headers.emplace_back("Age", std::to_string(age));
  return a;
}

// The prepared statement that fills entity `e`.
pg::Statement statement_of(const config::Entity& e) {
  return pg::Statement{e.statement, e.query, e.result == config::ResultShape::row, false};
}

// 16 lower-case hex digits (no printf on the request path).
void append_hex(std::string& out, std::uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  char buf[16];
  for (int i = 15; i >= 0; --i, v >>= 4) buf[i] = kHex[v & 0xf];
  out.append(buf, sizeof buf);
}

// The caller's X-Request-Id when it is a sane token (1..128 of
// [A-Za-z0-9._:-]), else a fresh random one.
std::string request_id_of(std::string_view given) {
  bool ok = !given.empty() && given.size() <= 128 && std::all_of(given.begin(), given.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-';
  });
  if (ok) return std::string(given);
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id;
  append_hex(id, rng());
  return id;
}

// "/v1/entities/user?x" -> "user"
std::string entity_of(std::string_view target) {
  static constexpr std::string_view kPrefix = "/v1/entities/";
  if (target.substr(0, kPrefix.size()) != kPrefix) return {};
  std::string_view rest = target.substr(kPrefix.size());
  return std::string(rest.substr(0, rest.find_first_of("?/")));
}

// A stale value's answer: RFC 9211 says it was served from the cache (hit)
// and that it was stale (fwd=stale); detail says why.
Answer stale_answer(const config::Entity& e, const cache::ValueHeader& h, std::string body, std::uint64_t now,
                    const char* detail) {
  return hit_answer(e, h, std::move(body), now, std::string("sidecache; hit; fwd=stale; detail=") + detail);
}

bool failed(const Outcome& o) { return o.status >= 500; }

double unit_random() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> d(std::nextafter(0.0, 1.0), 1.0);
  return d(rng);
}

std::string random_token() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string token;
  token.reserve(32);
  append_hex(token, rng());
  append_hex(token, rng());
  return token;
}

// Publishes a failure if the leader never got to publish (an exception, or
// the coroutine being destroyed at shutdown), so that no waiter hangs.
class LeaderGuard {
 public:
  LeaderGuard(cache::Singleflight<Outcome>& sf, std::string key, cache::Singleflight<Outcome>::CallPtr call)
      : sf_(sf), key_(std::move(key)), call_(std::move(call)) {}
  ~LeaderGuard() {
    if (deferred_) return;
    if (!published_) {
      Outcome o;
      o.status = 503;
      o.body = http::error_answer(503, "unavailable", "the fill was abandoned").body;
      o.retry_after = "1";
      sf_.publish(call_, std::move(o));
    }
    sf_.finish(key_, call_);
  }
  void publish(Outcome o) {
    published_ = true;
    sf_.publish(call_, std::move(o));
  }
  // Keeps the published call joinable a little longer: with nowhere to
  // store the value (Redis unavailable), requests for the same key arriving
  // just after still share this answer instead of querying again.
  void finish_after(net::any_io_executor ex, std::chrono::milliseconds delay) {
    deferred_ = true;
    auto timer = std::make_shared<net::steady_timer>(ex, delay);
    timer->async_wait([timer, &sf = sf_, key = key_, call = call_](const boost::system::error_code&) { sf.finish(key, call); });
  }

 private:
  cache::Singleflight<Outcome>& sf_;
  std::string key_;
  cache::Singleflight<Outcome>::CallPtr call_;
  bool published_ = false;
  bool deferred_ = false;
};

}  // namespace

SnapshotPtr Service::make_snapshot(std::shared_ptr<const config::Config> cfg, std::uint64_t generation) {
  auto snap = std::make_shared<Snapshot>();
  // A fill older than this is answered but not stored: tombstones are kept
  // twice as long, so every fill a tombstone must stop meets it.
  auto max_fill = cfg->postgres.statement_timeout + std::chrono::seconds(30);
  snap->max_fill_age_us = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(max_fill).count());
  snap->tombstone_ttl_ms = 2 * snap->max_fill_age_us / 1000;
  // A watermark must outlive every value it can invalidate (TTL, jitter,
  // stale window), with a margin.
  std::uint64_t longest_ms = 0;
  for (const auto& e : cfg->entities) {
    auto life = e.ttl + std::chrono::microseconds(static_cast<std::int64_t>(static_cast<double>(e.ttl.count()) * e.ttl_jitter));
    life = std::max(life, e.negative_ttl) + e.stale_window();
    longest_ms = std::max<std::uint64_t>(longest_ms, static_cast<std::uint64_t>(life.count() / 1000));
  }
  snap->watermark_ttl_ms = longest_ms + 60000;
  snap->lease_ttl_ms = static_cast<std::uint64_t>(cfg->postgres.statement_timeout.count()) + 1000;
  snap->generation = generation;
  snap->cfg = std::move(cfg);
  return snap;
}

Service::Service(std::shared_ptr<const config::Config> cfg, std::vector<net::io_context*> workers)
    : snap_(make_snapshot(cfg, 1)), workers_(std::move(workers)), pool_(cfg->postgres),
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
    l1_ = std::make_unique<cache::NearCache>(cfg->l1.max_bytes, horizon);
  }
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    redis_.push_back(std::make_shared<redis::Connection>(workers_[i]->get_executor(), cfg->redis, std::to_string(i)));
    redis_.back()->set_may_reconnect([this] { return breaker_.state() == redis::CircuitBreaker::State::closed; });
    stores_.emplace_back(redis_.back(), &breaker_, &metrics_);
  }
}

bool Service::reload(const std::string& path) {
  std::shared_ptr<config::Config> fresh;
  try {
    fresh = std::make_shared<config::Config>(config::load(path));
  } catch (const config::LoadError& e) {
    spdlog::error("reload refused, the running configuration stays: {}", e.what());
    return false;
  }
  SnapshotPtr old = current();
  const config::Config& was = *old->cfg;
  // What the running process cannot change: keep it, and say so.
  auto keep = [&](bool changed, const char* what) {
    if (changed) spdlog::warn("reload: {} changed but cannot change without a restart; keeping the running value", what);
  };
  keep(fresh->listen.text != was.listen.text, "listen");
  keep(fresh->workers != was.workers, "workers");
  keep(fresh->redis.url != was.redis.url || fresh->redis.timeout != was.redis.timeout ||
           fresh->redis.connect_timeout != was.redis.connect_timeout ||
           fresh->redis.breaker_failures != was.redis.breaker_failures ||
           fresh->redis.breaker_open_timeout != was.redis.breaker_open_timeout ||
           fresh->redis.breaker_half_open_probes != was.redis.breaker_half_open_probes,
       "redis");
  keep(fresh->postgres.dsn != was.postgres.dsn || fresh->postgres.pool_size != was.postgres.pool_size ||
           fresh->postgres.queue_limit != was.postgres.queue_limit ||
           fresh->postgres.statement_timeout != was.postgres.statement_timeout ||
           fresh->postgres.connect_timeout != was.postgres.connect_timeout,
       "postgres");
  keep(fresh->http.max_header_bytes != was.http.max_header_bytes || fresh->http.max_target_bytes != was.http.max_target_bytes ||
           fresh->http.max_body_bytes != was.http.max_body_bytes || fresh->http.header_timeout != was.http.header_timeout ||
           fresh->http.idle_timeout != was.http.idle_timeout,
       "http");
  keep(fresh->invalidation.channel != was.invalidation.channel, "invalidation.channel");
  keep(fresh->shutdown_timeout != was.shutdown_timeout, "shutdown_timeout");
  keep(fresh->listens() != was.listens(), "whether any entity has invalidate_on (the LISTEN connection)");
  keep(fresh->l1.max_bytes != was.l1.max_bytes, "l1.max_bytes");
  keep(fresh->key_prefix != was.key_prefix && was.l1.enabled(), "key_prefix (its L1 invalidation channel)");
  fresh->listen = was.listen;
  fresh->workers = was.workers;
  fresh->redis = was.redis;
  fresh->postgres = was.postgres;
  fresh->http = was.http;
  fresh->invalidation.channel = was.invalidation.channel;
  fresh->shutdown_timeout = was.shutdown_timeout;
  fresh->l1.max_bytes = was.l1.max_bytes;
  if (was.l1.enabled()) fresh->key_prefix = was.key_prefix;
  spdlog::set_level(spdlog::level::from_str(fresh->log_level));
  std::size_t n = fresh->entities.size();
  std::atomic_store(&snap_, make_snapshot(std::move(fresh), old->generation + 1));
  spdlog::info("reloaded {}: {} entities (configuration generation {})", path, n, old->generation + 1);
  return true;
}

Service::~Service() { pool_.stop(); }

void Service::start() {
  std::vector<pg::Statement> warm;
  for (const auto& e : current()->cfg->entities)
    warm.push_back(statement_of(e));
  pool_.start(std::move(warm));
  for (auto& r : redis_) net::post(r->executor(), [r] { r->start(); });
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
    net::post(l1_sub_->executor(), [sub = l1_sub_] { sub->start(); });
  }
  net::co_spawn(workers_[0]->get_executor(), replay_loop(), net::detached);
  const config::Config& cfg = *current()->cfg;
  if (cfg.listens()) {
    listener_ = std::make_unique<pg::Listener>(
        cfg.postgres, cfg.invalidation.channel, [this](const std::string& p) { on_notification(p); },
        [this](bool first) { on_listening(first); });
    listener_->start();
  }
}

unsigned Service::next_worker() { return round_robin_++ % static_cast<unsigned>(workers_.size()); }

void Service::on_notification(const std::string& payload) {
  SnapshotPtr snap = current();
  std::string error;
  auto invs = invalidations_for(*snap->cfg, payload, error);
  if (!error.empty()) {
    spdlog::warn("postgres: ignoring a notification on {}: {}", snap->cfg->invalidation.channel, error);
    return;
  }
  for (auto& inv : invs) {
    unsigned w = next_worker();
    net::co_spawn(workers_[w]->get_executor(), apply_or_queue(snap, std::move(inv), w, "notify"), net::detached);
  }
}

void Service::on_listening(bool first) {
  SnapshotPtr snap = current();
  if (!snap->cfg->invalidation.flush_on_listen) {
    listener_flushed_ = true;
    return;
  }
  // Notifications sent while nobody listened are lost: every entity that
  // relies on them is invalidated as of now.
  unsigned w = next_worker();
  net::co_spawn(workers_[w]->get_executor(), flush_listening(std::move(snap), w, first), net::detached);
}

net::awaitable<void> Service::flush_listening(SnapshotPtr snap, unsigned worker, bool first) {
  for (const auto& e : snap->cfg->entities) {
    if (e.invalidate_on.empty()) continue;
    // (A named variable, not a temporary inside co_await: gcc 12 mishandles
    // those in coroutines.)
    http::Invalidation inv = whole_entity(e);
    co_await apply_or_queue(snap, std::move(inv), worker, "listen");
  }
  if (first) spdlog::info("postgres: entities with invalidate_on were flushed at LISTEN");
  listener_flushed_ = true;
}

net::awaitable<void> Service::apply_or_queue(SnapshotPtr snap, http::Invalidation inv, unsigned worker, const char* source) {
  std::optional<std::uint64_t> at = co_await apply(*snap, inv, worker, source);
  if (at) {
    spdlog::debug("invalidated {} {} {} {} (notify)", http::to_string(inv.scope), inv.entity ? inv.entity->name : "",
                  inv.tenant, inv.request.key);
    co_return;
  }
  queue_invalidation(std::move(snap), std::move(inv));
}

void Service::queue_invalidation(SnapshotPtr snap, http::Invalidation inv) {
  std::lock_guard lock(pending_mu_);
  if (pending_.size() >= kMaxPending) {
    if (!pending_overflow_) spdlog::warn("redis: more than {} invalidations wait for Redis; all entities will be invalidated when it is back", kMaxPending);
    pending_overflow_ = true;
    pending_.clear();
    return;
  }
  if (!pending_overflow_) pending_.emplace_back(std::move(snap), std::move(inv));
}

net::awaitable<void> Service::replay_loop() {
  auto timer = replay_timer_;
  for (;;) {
    timer->expires_after(std::chrono::milliseconds(100));
    auto [ec] = co_await timer->async_wait(net::as_tuple(net::use_awaitable));
    if (ec) co_return;  // stopping
    std::deque<std::pair<SnapshotPtr, http::Invalidation>> batch;
    bool overflow;
    {
      std::lock_guard lock(pending_mu_);
      if (pending_.empty() && !pending_overflow_) continue;
      if (breaker_.state() == redis::CircuitBreaker::State::open) continue;
      batch.swap(pending_);
      overflow = pending_overflow_;
      pending_overflow_ = false;
    }
    if (overflow) {
      SnapshotPtr snap = current();
      for (const auto& e : snap->cfg->entities) batch.emplace_back(snap, whole_entity(e));
      spdlog::warn("redis: invalidating every entity: invalidations were dropped while Redis was unreachable");
    }
    std::size_t done = 0, total = batch.size();
    while (!batch.empty()) {
      auto item = std::move(batch.front());
      batch.pop_front();
      std::optional<std::uint64_t> at = co_await apply(*item.first, item.second, 0, "replay");
      if (at) {
        ++done;
        continue;
      }
      // Redis is still away: put back what is left, try again later.
      queue_invalidation(std::move(item.first), std::move(item.second));
      for (auto& rest : batch) queue_invalidation(std::move(rest.first), std::move(rest.second));
      break;
    }
    if (done) spdlog::info("redis: {} of {} invalidations that waited for Redis are applied", done, total);
  }
}

void Service::stop() {
  if (listener_) listener_->stop();
  if (replay_timer_) {
    std::promise<void> done;
    net::post(workers_[0]->get_executor(), [&] {
      replay_timer_->cancel();
      done.set_value();
    });
    done.get_future().wait_for(std::chrono::seconds(2));
  }
  if (l1_sub_) {
    std::promise<void> done;
    net::post(l1_sub_->executor(), [&] {
      l1_sub_->stop();
      done.set_value();
    });
    done.get_future().wait_for(std::chrono::seconds(2));
  }
  for (auto& r : redis_) {
    std::promise<void> done;
    net::post(r->executor(), [&] {
      r->stop();
      done.set_value();
    });
    done.get_future().wait_for(std::chrono::seconds(2));
  }
  pool_.stop();
}

net::awaitable<Answer> Service::handle(http::Request req) {
  auto started = Clock::now();
  // The request keeps this snapshot to the end, whatever a reload does.
  SnapshotPtr snap = current();
  http::Route r;
  if (auto denied = http::check_auth(*snap->cfg, req.target, req.authorization)) r.answer = std::move(*denied);
  else r = http::route(*snap->cfg, req.method, req.target, req.body);
  Answer a;
  switch (r.kind) {
    case http::Route::Kind::entity_get: a = co_await get_entity(snap, r.request, req.no_cache, req.worker); break;
    case http::Route::Kind::invalidate: a = co_await invalidate(*snap, r.invalidation, req.worker); break;
    case http::Route::Kind::entity_list:
      a.body = http::entity_list_json(*snap->cfg);
      break;
    case http::Route::Kind::healthz: a.body = R"({"status":"ok"})"; break;
    case http::Route::Kind::readyz: a = co_await readyz(*snap); break;
    case http::Route::Kind::metrics:
      a.body = scrape_metrics(*snap);
      a.content_type = "text/plain; version=0.0.4; charset=utf-8";
      break;
    case http::Route::Kind::answer: a = std::move(r.answer); break;
  }
  // Requests for a known entity are counted by outcome; the Cache-Status
  // already says which it was.
  const config::Entity* counted = r.kind == http::Route::Kind::entity_get ? r.request.entity
                                  : r.kind == http::Route::Kind::answer && a.status == 400
                                      ? snap->cfg->find_entity(entity_of(req.target))
                                      : nullptr;
  if (counted) {
    const std::string* cs = a.header("Cache-Status");
    metrics::Outcome outcome = metrics::Outcome::error;
    if (a.status < 500 && cs) {
      if (cs->find("fwd=stale") != std::string::npos) outcome = metrics::Outcome::stale;
      else if (cs->rfind("sidecache; hit", 0) == 0) outcome = metrics::Outcome::hit;
      else if (cs->find("collapsed") != std::string::npos) outcome = metrics::Outcome::collapsed;
      else if (cs->find("fwd=request") != std::string::npos) outcome = metrics::Outcome::bypass;
      else if (cs->find("fwd=miss") != std::string::npos) outcome = metrics::Outcome::miss;
    } else if (cs && cs->find("fwd=stale") != std::string::npos) {
      outcome = metrics::Outcome::stale;
    }
    metrics_.request(counted->name, outcome, a.status,
                     std::chrono::duration<double>(Clock::now() - started).count());
  }
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

// ---------------------------------------------------------------------------
// The read path
// ---------------------------------------------------------------------------

net::awaitable<Answer> Service::get_entity(SnapshotPtr snap, const http::EntityRequest& req, bool no_cache, unsigned worker) {
  const Snapshot& s = *snap;
  const config::Config& cfg = *s.cfg;
  cache::Store& store = stores_[worker];
  const config::Entity& e = *req.entity;
  const bool use_l1 = l1_ && e.l1_ttl.count() > 0 && !no_cache;
  cache::NearCache::Ticket ticket;
  if (use_l1) {
    cache::ValueHeader h;
    std::string body;
    if (l1_->get(req.key, cache::NearCache::Clock::now(), h, body))
      co_return hit_answer(e, h, std::move(body), unix_us(), "sidecache; hit; detail=l1");
    // Taken before Redis is read: a copy is refused if L1 lost its
    // invalidation feed in between.
    ticket = l1_->ticket();
  }
  std::vector<std::string> keys = cache::read_keys(cfg.key_prefix, e, req.values, req.key);

  if (no_cache) {
    // The caller asked for the database's answer: no read, no collapsing
    // onto a fill that may have started before its write.
    Outcome o = co_await lead_fill(s, store, req, keys, true, LeaseMode::none);
    std::string body = std::move(o.body);
    co_return answer_of(o, std::move(body), o.stored ? "sidecache; fwd=request; stored" : "sidecache; fwd=request");
  }

  // A fill of this key is in flight in this process and has not begun to
  // store: wait for it without reading Redis. If it stores its value, no
  // invalidation came between its start and its store, and every
  // invalidation that returned before this request began was applied
  // before that store (the leader seals the call before storing), so the
  // value is as fresh as a read of our own. Anything else (not stored,
  // failed, a refresh that did nothing): take the usual path below.
  // In a stampede this spares Redis one read per waiting request.
  if (auto inflight = flights_.find(req.key); inflight && !inflight->sealed()) {
    auto shared = co_await flights_.async_wait(inflight, net::use_awaitable);
    if (shared->stored) co_return answer_of(*shared, shared->body, "sidecache; fwd=miss; collapsed");
    if (failed(*shared)) {
      // The fill failed: no second fill from every waiter; a stale value
      // if the entity allows one, else the same failure.
      cache::Lookup old = co_await store.lookup(keys, unix_us());
      std::uint64_t now = unix_us();
      if (old.status == cache::Lookup::Status::expired &&
          now - old.header.soft_expiry_us < static_cast<std::uint64_t>(e.stale_if_error.count()))
        co_return stale_answer(e, old.header, std::move(old.body), now, "error");
      co_return answer_of(*shared, shared->body, "sidecache; fwd=miss; collapsed");
    }
  }

  // A valid value past its soft expiry, kept to answer if PostgreSQL fails.
  bool have_stale = false;
  cache::ValueHeader stale_header;
  std::string stale_body;

  // A waiter that is handed a read older than an invalidation it saw goes
  // round again; after a few rounds it reads PostgreSQL on its own.
  constexpr int kRounds = 4;
  for (int round = 0;; ++round) {
    cache::Lookup seen = co_await store.lookup(keys, unix_us());
    std::uint64_t now = unix_us();
    if (seen.status == cache::Lookup::Status::fresh) {
      if (e.early_refresh_beta > 0 &&
          cache::xfetch_due(now, seen.header.soft_expiry_us, seen.header.fill_us, e.early_refresh_beta, unit_random()))
        spawn_refresh(snap, req, worker);
      if (use_l1) l1_put(e, ticket, keys, seen.header, seen.body);
      co_return hit_answer(e, seen.header, std::move(seen.body), now);
    }
    if (seen.status == cache::Lookup::Status::expired) {
      std::uint64_t past = now - seen.header.soft_expiry_us;
      if (past < static_cast<std::uint64_t>(e.stale_while_revalidate.count())) {
        spawn_refresh(snap, req, worker);
        co_return stale_answer(e, seen.header, std::move(seen.body), now, "revalidating");
      }
      if (past < static_cast<std::uint64_t>(e.stale_if_error.count())) {
        have_stale = true;
        stale_header = seen.header;
        stale_body = std::move(seen.body);
      }
    }
    if (seen.status == cache::Lookup::Status::error)
      spdlog::debug("redis: read of {} failed ({}); reading PostgreSQL", req.key, seen.error);
    bool redis_ok = seen.status != cache::Lookup::Status::error;

    Outcome o;
    const char* cache_status;
    if (round == kRounds) {
      o = co_await lead_fill(s, store, req, keys, redis_ok, LeaseMode::wait);
      cache_status = o.stored ? "sidecache; fwd=miss; stored" : "sidecache; fwd=miss";
    } else {
      auto joined = flights_.join(req.key);
      if (!joined.leader) {
        auto shared = co_await flights_.async_wait(joined.call, net::use_awaitable);
        if (shared->status == 0) continue;  // a background refresh that did nothing
        if (shared->read_began_us != 0 && !cache::reflects(shared->read_began_us, seen.seen_watermark_us)) continue;
        if (shared->from_cache) co_return hit_answer(e, shared->header, shared->body, unix_us());
        if (failed(*shared) && have_stale) co_return stale_answer(e, stale_header, std::move(stale_body), unix_us(), "error");
        co_return answer_of(*shared, shared->body, "sidecache; fwd=miss; collapsed");
      }
      LeaderGuard guard(flights_, req.key, joined.call);
      Outcome filled = co_await lead_fill(s, store, req, keys, redis_ok, LeaseMode::wait, joined.call.get());
      o = std::move(filled);
      // The value is in Redis before anyone else is told, so a request that
      // arrives after this finds it there.
      guard.publish(o);
      if (!o.stored && (o.status == 200 || o.status == 404) && !redis_ok)
        guard.finish_after(co_await net::this_coro::executor, std::chrono::milliseconds(100));
      cache_status = o.stored ? "sidecache; fwd=miss; stored" : "sidecache; fwd=miss";
    }
    // What this process read (stored in Redis, or found there by the
    // leader's second look) is what L1 may keep.
    if (use_l1 && (o.stored || o.from_cache)) l1_put(e, ticket, keys, o.header, o.status == 200 ? o.body : std::string());
    if (o.from_cache) co_return hit_answer(e, o.header, std::move(o.body), unix_us());
    if (failed(o) && have_stale) co_return stale_answer(e, stale_header, std::move(stale_body), unix_us(), "error");
    std::string body = std::move(o.body);
    co_return answer_of(o, std::move(body), cache_status);
  }
}

net::awaitable<Outcome> Service::lead_fill(const Snapshot& s, cache::Store& store, const http::EntityRequest& req,
                                           const std::vector<std::string>& keys, bool redis_ok, LeaseMode mode,
                                           cache::Singleflight<Outcome>::Call* call) {
  const config::Config& cfg = *s.cfg;
  const std::uint64_t lease_ttl_ms = s.lease_ttl_ms;
  std::string lease = cache::lease_key(cfg.key_prefix, req.key);
  std::string token = random_token();
  cache::Begin begin;
  if (redis_ok) {
    // Another process holding the lease is filling this key: wait for its
    // value (bounded by the lease's life), then fill anyway.
    auto deadline = Clock::now() + std::chrono::milliseconds(lease_ttl_ms);
    net::steady_timer timer(co_await net::this_coro::executor);
    for (;;) {
      cache::Begin b = co_await store.begin_fill(keys, lease, token, lease_ttl_ms, unix_us());
      begin = std::move(b);
      // A fresh value ends a miss; a refresh or a no-cache read wants the
      // database's answer all the same.
      if (begin.lookup.status == cache::Lookup::Status::fresh && mode == LeaseMode::wait) {
        Outcome o;
        o.status = begin.lookup.header.negative() ? 404 : 200;
        o.from_cache = true;
        o.header = begin.lookup.header;
        o.body = std::move(begin.lookup.body);
        o.read_began_us = begin.lookup.header.created_us;
        co_return o;
      }
      if (!begin.ok || begin.leased || mode == LeaseMode::none) break;
      if (mode == LeaseMode::skip) {
        Outcome skipped;
        skipped.status = 0;  // nothing done: waiters look again
        co_return skipped;
      }
      if (Clock::now() >= deadline) {
        spdlog::warn("cache: waited {} ms for another process to fill {}; filling it here", lease_ttl_ms, req.key);
        break;
      }
      timer.expires_after(std::chrono::milliseconds(10));
      co_await timer.async_wait(net::as_tuple(net::use_awaitable));
    }
  }
  Outcome o = co_await fill_and_store(s, store, req, keys, lease, token, begin, call);
  co_return o;
}

void Service::spawn_refresh(SnapshotPtr s, const http::EntityRequest& req, unsigned worker) {
  auto joined = flights_.join(req.key);
  if (!joined.leader) return;  // this process is already filling the key
  // Sealed from the start: a request arriving during a background refresh
  // reads Redis (where the old value still serves) instead of waiting.
  joined.call->seal();
  net::co_spawn(workers_[worker]->get_executor(), refresh(std::move(s), req, worker, joined.call), net::detached);
}

net::awaitable<void> Service::refresh(SnapshotPtr s, http::EntityRequest req, unsigned worker,
                                      cache::Singleflight<Outcome>::CallPtr call) {
  cache::Singleflight<Outcome>::Call* call_ptr = call.get();
  LeaderGuard guard(flights_, req.key, std::move(call));
  std::vector<std::string> keys = cache::read_keys(s->cfg->key_prefix, *req.entity, req.values, req.key);
  Outcome o = co_await lead_fill(*s, stores_[worker], req, keys, true, LeaseMode::skip, call_ptr);
  if (o.status >= 500) spdlog::debug("cache: background refresh of {} failed: {}", req.key, o.body);
  guard.publish(std::move(o));
}

net::awaitable<Outcome> Service::fill_and_store(const Snapshot& s, cache::Store& store, const http::EntityRequest& req,
                                                const std::vector<std::string>& keys, const std::string& lease,
                                                const std::string& token, const cache::Begin& begin,
                                                cache::Singleflight<Outcome>::Call* call) {
  Outcome o = co_await fill(req, begin.ok ? begin.start_us : 0);
  // From here on, a request that joins may have seen an invalidation the
  // commit below will not: it must read Redis itself.
  if (call) call->seal();
  if (!begin.ok) co_return o;
  if (o.status != 200 && o.status != 404) {
    if (begin.leased) co_await store.release(lease, token);  // let a waiting process try
    co_return o;
  }
  std::string bytes = cache::encode_value(o.header, o.status == 200 ? std::string_view(o.body) : std::string_view{});
  // Redis keeps the value past its soft expiry for as long as it may be
  // served stale.
  std::uint64_t ttl_ms = (o.header.soft_expiry_us - o.header.created_us +
                          static_cast<std::uint64_t>(req.entity->stale_window().count())) / 1000;
  cache::Commit c = co_await store.commit(keys, lease, token, begin.start_us, s.max_fill_age_us, bytes, ttl_ms);
  switch (c) {
    case cache::Commit::stored: o.stored = true; break;
    case cache::Commit::invalidated:
      spdlog::debug("cache: {} was invalidated while it was read; not stored", req.key);
      break;
    case cache::Commit::too_old: spdlog::warn("cache: the fill of {} took too long to be stored", req.key); break;
    case cache::Commit::error: spdlog::debug("redis: storing {} failed; answered without storing", req.key); break;
  }
  co_return o;
}

net::awaitable<Outcome> Service::fill(const http::EntityRequest& req, std::uint64_t start_us) {
  const config::Entity& e = *req.entity;
  std::vector<std::string> args;
  args.reserve(e.bind.size());
  for (std::size_t i : e.bind) args.push_back(req.values[i]);
  // The per-entity cap: beyond it, a fast 503 rather than a longer queue.
  bool capped = e.max_concurrent_fills > 0;
  if (capped) {
    std::lock_guard lock(fills_mu_);
    std::size_t& n = fills_in_flight_[e.name];
    if (n >= e.max_concurrent_fills) {
      Outcome busy;
      busy.status = 503;
      busy.body = http::error_answer(503, "unavailable", "entity '" + e.name + "' has max_concurrent_fills fills running").body;
      busy.retry_after = "1";
      co_return busy;
    }
    ++n;
  }
  pg::Statement st = statement_of(e);
  pg::FillResult fr = co_await pool_.async_run(std::move(st), std::move(args), net::use_awaitable);
  metrics_.fill(e.name, std::chrono::duration<double>(fr.took).count());
  if (capped) {
    std::lock_guard lock(fills_mu_);
    --fills_in_flight_[e.name];
  }

  Outcome o;
  o.read_began_us = start_us;
  o.header.created_us = start_us ? start_us : unix_us();
  o.header.fill_us = static_cast<std::uint32_t>(std::min<std::int64_t>(fr.took.count(), UINT32_MAX));
  using S = pg::FillResult::Status;
  switch (fr.status) {
    case S::ok:
      o.status = 200;
      o.body = std::move(fr.json);
      o.header.soft_expiry_us = o.header.created_us + static_cast<std::uint64_t>(jittered(e.ttl, e.ttl_jitter).count());
      break;
    case S::not_found:
      o.status = 404;
      o.body = not_found_answer(e).body;
      o.header.flags |= cache::ValueHeader::kNegative;
      o.header.soft_expiry_us = o.header.created_us + static_cast<std::uint64_t>(e.negative_ttl.count());
      break;
    case S::unavailable:
      o.status = 503;
      o.body = http::error_answer(503, "unavailable", fr.message).body;
      o.retry_after = "1";
      break;
    case S::timeout:
      o.status = 504;
      o.body = http::error_answer(504, "timeout", fr.message).body;
      break;
    case S::error:
      o.status = 500;
      o.body = http::error_answer(500, "query_failed", fr.message, {{"entity", e.name}}).body;
      break;
  }
  co_return o;
}

// ---------------------------------------------------------------------------
// Invalidation
// ---------------------------------------------------------------------------

net::awaitable<std::optional<std::uint64_t>> Service::apply(const Snapshot& s, const http::Invalidation& inv, unsigned worker,
                                                            const char* source) {
  cache::Store& store = stores_[worker % stores_.size()];
  using Scope = http::Invalidation::Scope;
  const std::string& p = s.cfg->key_prefix;
  if (inv.scope == Scope::key) {
    std::optional<std::uint64_t> at = co_await store.tombstone(inv.request.key, s.tombstone_ttl_ms, l1_channel_);
    if (at) metrics_.invalidation("key", source);
    std::vector<std::string> key(1, inv.request.key);
    l1_invalidate(key, at ? *at : UINT64_MAX);
    co_return at;
  }
  std::vector<std::string> wm;
  if (inv.scope == Scope::tenant) wm.push_back(cache::tenant_watermark(p, inv.tenant));
  else if (inv.scope == Scope::entity && !inv.tenant.empty()) wm.push_back(cache::entity_tenant_watermark(p, inv.tenant, inv.entity->name));
  else wm.push_back(cache::entity_watermark(p, inv.entity->name));  // a global entity, or all tenants
  std::optional<std::uint64_t> at = co_await store.raise_watermarks(wm, s.watermark_ttl_ms, l1_channel_);
  if (at) metrics_.invalidation(http::to_string(inv.scope), source);
  l1_invalidate(wm, at ? *at : UINT64_MAX);
  co_return at;
}

net::awaitable<Answer> Service::invalidate(const Snapshot& s, const http::Invalidation& inv, unsigned worker) {
  std::optional<std::uint64_t> at = co_await apply(s, inv, worker, "api");
  if (!at) {
    // Applied as soon as Redis answers again, in case the caller gives up;
    // the caller is told it did not take effect yet.
    queue_invalidation(current(), inv);
    Answer a = http::error_answer(503, "unavailable",
                                  "Redis could not be reached: the invalidation has not taken effect yet; it is queued "
                                  "and applied when Redis is back, retry it to be sure");
    a.headers.emplace_back("Retry-After", "1");
    co_return a;
  }
  namespace json = boost::json;
  json::object o;
  o["invalidated"] = http::to_string(inv.scope);
  if (inv.entity) o["entity"] = inv.entity->name;
  if (!inv.tenant.empty()) o["tenant"] = inv.tenant;
  if (inv.scope == http::Invalidation::Scope::key) o["key"] = inv.request.key;
  o["at_us"] = *at;
  Answer a;
  a.body = json::serialize(o);
  co_return a;
}

void Service::l1_put(const config::Entity& e, const cache::NearCache::Ticket& t, const std::vector<std::string>& keys,
                     const cache::ValueHeader& h, std::string_view body) {
  auto now = cache::NearCache::Clock::now();
  std::uint64_t wall = unix_us();
  if (h.soft_expiry_us <= wall) return;
  auto life = std::min<std::chrono::microseconds>(e.l1_ttl, std::chrono::microseconds(h.soft_expiry_us - wall));
  l1_->put(t, keys, h, body, now + life, now);
}

void Service::l1_invalidate(const std::vector<std::string>& keys, std::uint64_t at_us) {
  // This process's own copies go at once, before the caller is answered,
  // even when Redis was not reached (then everything those keys cover is
  // kept out of L1 until the record ages out). Other processes hear of it
  // on the channel.
  if (!l1_) return;
  auto now = cache::NearCache::Clock::now();
  for (const auto& k : keys) l1_->invalidate(k, at_us, now);
}

std::string Service::scrape_metrics(const Snapshot& s) {
  metrics::Snapshot now;
  pg::PoolStats ps = pool_.stats();
  now.pool_size = ps.size;
  now.pool_in_use = ps.in_use;
  now.pool_queued = ps.queued;
  now.pool_rejected = ps.rejected;
  now.singleflight_waiters = flights_.waiting();
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
  }
  {
    std::lock_guard lock(pending_mu_);
    now.pending_invalidations = pending_.size();
  }
  return metrics_.scrape(now);
}

net::awaitable<Answer> Service::readyz(const Snapshot& s) {
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
  json::object pg{{"state", pg_up ? "up" : "down"}};
  if (!pg_up) pg["message"] = ping.message;
  o["postgres"] = std::move(pg);
  std::size_t pending;
  {
    std::lock_guard lock(pending_mu_);
    pending = pending_.size();
  }
  o["redis"] = json::object{{"state", redis_up == redis_.size() ? "up" : redis_up == 0 ? "down" : "degraded"},
                            {"connections_up", redis_up},
                            {"connections", redis_.size()},
                            {"breaker", redis::to_string(breaker_.state())},
                            {"pending_invalidations", pending}};
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
  Answer a;
  a.status = ready ? 200 : 503;
  a.body = json::serialize(o);
  if (!ready) a.headers.emplace_back("Retry-After", "1");
  co_return a;
}

}  // namespace sidecache::app

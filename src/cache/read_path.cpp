#include "sidecache/cache/read_path.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "sidecache/cache/error_body.hpp"
#include "sidecache/cache/key.hpp"
#include "sidecache/cache/random.hpp"
#include "sidecache/cache/wall_clock.hpp"

namespace sidecache::cache {

using Clock = std::chrono::steady_clock;
using K = ReadResult::Kind;

namespace {

std::string not_found_body(const config::Entity& e) {
  return error_body("not_found", "no " + e.name + " matches these parameters", {{"entity", e.name}});
}

// A shared fill outcome's result.
ReadResult filled(K kind, const FillOutcome& o, std::string body) {
  ReadResult r;
  r.kind = kind;
  r.status = o.status;
  r.stored = o.stored;
  r.too_large = o.too_large;
  r.store_unknown = o.store_unknown;
  r.body = std::move(body);
  r.retry = o.retry;
  return r;
}

bool failed(const FillOutcome& o) { return o.status >= 500; }

}  // namespace

ReadResult cached_result(K kind, const config::Entity& e, const ValueHeader& h, std::string body, std::uint64_t now) {
  ReadResult r;
  r.kind = kind;
  if (h.negative()) {
    r.status = 404;
    r.body = not_found_body(e);
  } else {
    r.body = std::move(body);
  }
  r.age_s = now > h.created_us ? (now - h.created_us) / 1000000 : 0;
  return r;
}

// Publishes a failure if the leader never got to publish (an exception, or
// the coroutine being destroyed at shutdown), so that no waiter hangs.
class ReadPath::LeaderGuard {
 public:
  LeaderGuard(Flights& sf, std::string key, Flights::CallPtr call)
      : sf_(sf), key_(std::move(key)), call_(std::move(call)) {}
  ~LeaderGuard() {
    if (deferred_) return;
    if (!published_) {
      FillOutcome o;
      o.status = 503;
      o.body = error_body("unavailable", "the fill was abandoned");
      o.retry = true;
      sf_.publish(call_, std::move(o));
    }
    sf_.finish(key_, call_);
  }
  void publish(FillOutcome o) {
    published_ = true;
    sf_.publish(call_, std::move(o));
  }
  // Keeps the published call joinable a little longer: with nowhere to
  // store the value (the store unavailable), requests for the same key
  // arriving just after still share this answer instead of querying again.
  void finish_after(net::any_io_executor ex, std::chrono::milliseconds delay) {
    deferred_ = true;
    auto timer = std::make_shared<net::steady_timer>(ex, delay);
    timer->async_wait([timer, &sf = sf_, key = key_, call = call_](const boost::system::error_code&) { sf.finish(key, call); });
  }

 private:
  Flights& sf_;
  std::string key_;
  Flights::CallPtr call_;
  bool published_ = false;
  bool deferred_ = false;
};

ReadPath::ReadPath(std::vector<Store*> stores, Filler& filler, NearCache* l1, metrics::Metrics* metrics)
    : stores_(std::move(stores)), filler_(filler), l1_(l1), metrics_(metrics), cold_(stores_.size()), draw_(random_unit) {}

net::awaitable<ReadResult> ReadPath::get(const EntityRequest& req, bool no_cache, unsigned worker) {
  const Snapshot& s = *req.snapshot;
  Store& store = *stores_[worker];
  const config::Entity& e = *req.entity;
  const std::uint64_t began = wall_us();
  const bool use_l1 = l1_ && e.l1_ttl.count() > 0 && !no_cache;
  NearCache::Ticket ticket;
  if (use_l1) {
    ValueHeader h;
    std::string body;
    if (l1_->get(req.key, NearCache::Clock::now(), h, body)) {
      if (audited(s)) audit(req, worker, h, body, co_await net::this_coro::executor);
      co_return cached_result(K::l1_hit, e, h, std::move(body), wall_us());
    }
    // Taken before the store is read: a copy is refused if L1 lost its
    // invalidation feed in between.
    ticket = l1_->ticket();
  }
  std::vector<std::string> keys = s.keys.read(e, req.values, req.key);

  if (no_cache) {
    // The caller asked for the database's answer: no read, no collapsing
    // onto a fill that may have started before its write.
    FillOutcome o = co_await lead_fill(store, req, keys, true, LeaseMode::none);
    std::string body = std::move(o.body);
    co_return filled(K::bypass, o, std::move(body));
  }

  // A fill of this key is in flight in this process and has not begun to
  // store: wait for it without reading the store. If it stores its value,
  // no invalidation came between its start and its store, and every
  // invalidation that returned before this request began was applied
  // before that store (the leader seals the call before storing), so the
  // value is as fresh as a read of our own. Anything else (not stored,
  // failed, a refresh that did nothing): take the usual path below.
  // In a stampede this spares Redis one read per waiting request.
  if (auto inflight = flights_.find(req.key); inflight && !inflight->sealed()) {
    auto shared = co_await flights_.async_wait(inflight, net::use_awaitable);
    if (shared->stored) co_return filled(K::collapsed, *shared, shared->body);
    if (failed(*shared)) {
      // The fill failed: no second fill from every waiter; a stale value
      // if the entity allows one, else the same failure.
      Lookup old = co_await store.lookup(keys, wall_us(), e.column_tags());
      std::uint64_t now = wall_us();
      if (old.status == Lookup::Status::expired &&
          now - old.header.soft_expiry_us < static_cast<std::uint64_t>(e.stale_if_error.count()))
        co_return cached_result(K::stale_error, e, old.header, std::move(old.body), now);
      co_return filled(K::collapsed, *shared, shared->body);
    }
  }

  // A key this worker expects to be cold: no lookup, the begin's look
  // stands for it (ColdGuess). Only as the leader of its fill: a request
  // that finds another fill of the key in flight takes the usual path.
  if (cold_.cold(worker, e.name)) {
    auto joined = flights_.join(req.key);
    if (joined.leader) {
      // Status 0 (the begin found a value past its soft expiry and did
      // nothing): waiters look again, as this request does below.
      FillOutcome o = co_await lead(store, req, keys, joined.call, true, true);
      const bool was_cold = o.status != 0 && !o.from_cache;
      cold_.record(worker, e.name, was_cold);
      if (metrics_) metrics_->cold_look(e.name, was_cold);
      if (o.from_cache) {
        // A wrong guess: a hit like any other (XFetch, L1, the audit's sample).
        Lookup seen;
        seen.status = Lookup::Status::fresh;
        seen.header = o.header;
        seen.body = std::move(o.body);
        seen.tag_keys = std::move(o.tag_keys);
        co_return serve_hit(req, worker, keys, use_l1 ? &ticket : nullptr, seen, wall_us(), co_await net::this_coro::executor);
      }
      if (o.status != 0) co_return led_result(req, use_l1 ? &ticket : nullptr, keys, o);
    }
  }

  // A valid value past its soft expiry, kept to answer if the fill fails.
  bool have_stale = false;
  ValueHeader stale_header;
  std::string stale_body;

  // A waiter that is handed a read older than an invalidation it saw goes
  // round again; after a few rounds it reads PostgreSQL on its own.
  constexpr int kRounds = 4;
  for (int round = 0;; ++round) {
    Lookup seen = co_await store.lookup(keys, wall_us(), e.column_tags());
    std::uint64_t now = wall_us();
    if (round == 0 && seen.status != Lookup::Status::error) cold_.record(worker, e.name, seen.status == Lookup::Status::miss);
    if (seen.status == Lookup::Status::fresh) {
      co_return serve_hit(req, worker, keys, use_l1 ? &ticket : nullptr, seen, now, co_await net::this_coro::executor);
    }
    if (seen.status == Lookup::Status::expired) {
      std::uint64_t past = now - seen.header.soft_expiry_us;
      if (past < static_cast<std::uint64_t>(e.stale_while_revalidate.count())) {
        spawn_refresh(req, worker, co_await net::this_coro::executor);
        co_return cached_result(K::stale_revalidating, e, seen.header, std::move(seen.body), now);
      }
      if (past < static_cast<std::uint64_t>(e.stale_if_error.count())) {
        have_stale = true;
        stale_header = seen.header;
        stale_body = std::move(seen.body);
      }
    }
    if (seen.status == Lookup::Status::error)
      spdlog::debug("redis: read of {} failed ({}); reading PostgreSQL", req.key, seen.error);
    bool redis_ok = seen.status != Lookup::Status::error;

    FillOutcome o;
    if (round == kRounds) {
      o = co_await lead_fill(store, req, keys, redis_ok, LeaseMode::wait);
    } else {
      auto joined = flights_.join(req.key);
      if (!joined.leader) {
        auto shared = co_await flights_.async_wait(joined.call, net::use_awaitable);
        if (shared->status == 0) continue;  // a background refresh that did nothing
        if (seen.status == Lookup::Status::error) {
          // This request could not read the store and knows nothing of the
          // invalidations: the store may take them while it refuses reads
          // (a slot migrating on Redis Cluster). Not a read begun before one
          // this process answered. (With the store down, none is answered:
          // a stampede still makes one query.)
          if (shared->read_began_wall_us <= last_invalidation_wall_us_.load(std::memory_order_acquire)) continue;
        } else if (shared->read_began_us == 0) {
          // A read without a store time (the leader could not reach it):
          // only one begun after this request, which saw its invalidations.
          if (shared->read_began_wall_us < began) continue;
        } else if (!reflects(shared->read_began_us, seen.seen_watermark_us)) {
          continue;
        } else if (e.column_tags() && !shared->stored && shared->read_began_wall_us < began) {
          // Column tags are known only from the row: this request's look
          // judged the tags of the value it found (none, if none), not those
          // of the row read for it. A commit judges them; one that did not
          // store says nothing of the invalidations this request saw. Only
          // a read begun after this request did sees them.
          continue;
        }
        if (shared->from_cache) co_return cached_result(K::hit, e, shared->header, shared->body, wall_us());
        if (failed(*shared) && have_stale) co_return cached_result(K::stale_error, e, stale_header, std::move(stale_body), wall_us());
        co_return filled(K::collapsed, *shared, shared->body);
      }
      FillOutcome mine = co_await lead(store, req, keys, joined.call, redis_ok, false);
      o = std::move(mine);
    }
    if (failed(o) && have_stale) co_return cached_result(K::stale_error, e, stale_header, std::move(stale_body), wall_us());
    co_return led_result(req, use_l1 ? &ticket : nullptr, keys, o);
  }
}

net::awaitable<FillOutcome> ReadPath::lead(Store& store, const EntityRequest& req, const std::vector<std::string>& keys,
                                           Flights::CallPtr call, bool redis_ok, bool cold) {
  LeaderGuard guard(flights_, req.key, call);
  FillOutcome o = co_await lead_fill(store, req, keys, redis_ok, LeaseMode::wait, call.get(), cold);
  // The value is in the store before anyone else is told, so a request
  // that arrives after this finds it there.
  guard.publish(o);
  // The store out of reach: its lookup failed, or (a cold guess, which
  // made none) its begin.
  const bool unreached = !redis_ok || (cold && !o.from_cache && o.read_began_us == 0);
  if (!o.stored && (o.status == 200 || o.status == 404) && unreached)
    guard.finish_after(co_await net::this_coro::executor, std::chrono::milliseconds(100));
  co_return o;
}

ReadResult ReadPath::led_result(const EntityRequest& req, const NearCache::Ticket* ticket,
                                const std::vector<std::string>& keys, FillOutcome& o) {
  // What this process read (stored, or found by the leader's second
  // look) is what L1 may keep.
  if (ticket && (o.stored || o.from_cache)) l1_put(req, *ticket, keys, o.tag_keys, o.header, o.status == 200 ? o.body : std::string());
  if (o.from_cache) return cached_result(K::hit, *req.entity, o.header, std::move(o.body), wall_us());
  std::string body = std::move(o.body);
  return filled(K::miss, o, std::move(body));
}

net::awaitable<FillOutcome> ReadPath::lead_fill(Store& store, const EntityRequest& req,
                                                const std::vector<std::string>& keys, bool redis_ok, LeaseMode mode,
                                                Flights::Call* call, bool cold) {
  const Snapshot& s = *req.snapshot;
  const std::uint64_t lease_ttl_ms = s.lease_ttl_ms;
  std::string lease = lease_key(s.keys.prefix(), req.key);
  std::string token = random_token();
  Begin begin;
  if (redis_ok) {
    // Another process holding the lease is filling this key: wait for its
    // value (bounded by the lease's life), then fill anyway.
    auto deadline = Clock::now() + std::chrono::milliseconds(lease_ttl_ms);
    net::steady_timer timer(co_await net::this_coro::executor);
    for (;;) {
      Begin b = co_await store.begin_fill(s.keys, keys, lease, token, lease_ttl_ms, wall_us(), cold);
      begin = std::move(b);
      // A fresh value ends a miss; a refresh or a no-cache read wants the
      // database's answer all the same.
      if (begin.lookup.status == Lookup::Status::fresh && mode == LeaseMode::wait) {
        // No fill follows: a lease taken by this look would make another
        // process wait for a value that is already there.
        if (begin.leased) co_await store.release(lease, token);
        FillOutcome o;
        o.status = begin.lookup.header.negative() ? 404 : 200;
        o.from_cache = true;
        o.header = begin.lookup.header;
        o.body = std::move(begin.lookup.body);
        o.read_began_us = begin.lookup.header.created_us;
        o.read_began_wall_us = o.read_began_us;
        o.tag_keys = std::move(begin.lookup.tag_keys);
        co_return o;
      }
      if (begin.only_looked) {
        // A cold begin found a value and only looked. Past its soft
        // expiry: the caller's usual path serves or refreshes it. Else it
        // was invalidated: begin for real, at once.
        cold = false;
        if (begin.lookup.status == Lookup::Status::expired) {
          FillOutcome looked;
          looked.status = 0;
          co_return looked;
        }
        continue;
      }
      cold = false;
      if (!begin.ok || begin.leased || mode == LeaseMode::none) break;
      if (mode == LeaseMode::skip) {
        FillOutcome skipped;
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
  // The lease is released on every path: fill_and_store releases it
  // after a failed fill and with the commit; here, after an exception.
  std::exception_ptr thrown;
  FillOutcome o;
  try {
    o = co_await fill_and_store(store, req, keys, lease, token, begin, call);
  } catch (...) {
    thrown = std::current_exception();
  }
  if (thrown) {
    if (begin.leased) co_await store.release(lease, token);
    std::rethrow_exception(thrown);
  }
  co_return o;
}

void ReadPath::spawn_refresh(const EntityRequest& req, unsigned worker, net::any_io_executor ex) {
  auto joined = flights_.join(req.key);
  if (!joined.leader) return;  // this process is already filling the key
  // Sealed from the start: a request arriving during a background refresh
  // reads the store (where the old value still serves) instead of waiting.
  joined.call->seal();
  net::co_spawn(ex, refresh(req, worker, joined.call), net::detached);
}

net::awaitable<void> ReadPath::refresh(EntityRequest req, unsigned worker, Flights::CallPtr call) {
  Flights::Call* call_ptr = call.get();
  LeaderGuard guard(flights_, req.key, std::move(call));
  std::vector<std::string> keys = req.snapshot->keys.read(*req.entity, req.values, req.key);
  FillOutcome o = co_await lead_fill(*stores_[worker], req, keys, true, LeaseMode::skip, call_ptr);
  if (o.status >= 500) spdlog::debug("cache: background refresh of {} failed: {}", req.key, o.body);
  guard.publish(std::move(o));
}

}  // namespace sidecache::cache

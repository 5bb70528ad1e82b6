#pragma once
// Applies invalidations to the store, whoever asked (API, NOTIFY, the flush
// at LISTEN), and keeps the ones that could not reach it: they are replayed
// as soon as the store answers again (docs/invalidation.md, "Redis
// outages"). Each queued invalidation owns its snapshot, so a reload in
// between cannot free what it points into.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sidecache/cache/l1.hpp"
#include "sidecache/cache/request.hpp"
#include "sidecache/cache/store.hpp"
#include "sidecache/cache/wal_position.hpp"
#include "sidecache/metrics/metrics.hpp"

namespace sidecache::cache {

// Who asked for an invalidation (the metric's `source` label). A replay
// applies one that could not reach the store earlier.
enum class Source { api, notify, listen, replay };
const char* to_string(Source s);

class Invalidator {
 public:
  // stores[w] serves worker w; l1 and metrics may be null. `l1_channel`
  // is where every process's L1 hears of invalidations ('' for none).
  Invalidator(std::vector<Store*> stores, NearCache* l1, std::string l1_channel, metrics::Metrics* metrics);
  // With read replicas: each invalidation first reads the primary's WAL
  // position and records it with its watermark or tombstone (null: none).
  void record_wal_positions(WalPosition* wal) { wal_ = wal; }
  // Called after every invalidation that took effect (ReadPath::invalidation_answered).
  void on_applied(std::function<void()> fn) { on_applied_ = std::move(fn); }

  // Runs one invalidation (inv.snapshot set); nullopt when the store could
  // not be reached (nothing took effect yet). `source` labels the
  // metric.
  net::awaitable<std::optional<std::uint64_t>> apply(const Invalidation& inv, unsigned worker, Source source);
  // apply(), and queue() when the store could not be reached.
  net::awaitable<void> apply_or_queue(Invalidation inv, unsigned worker, Source source);
  // apply(), retried every kRetryEvery until it takes effect (by its caller,
  // who wants to know when: not queued for the replay); answers its time.
  // The retries count as replays, so L1 keeps what the first failed try
  // held until the try that succeeds releases it. `first_failure`, if set,
  // runs once, when the first try fails.
  net::awaitable<std::uint64_t> apply_until_applied(const Invalidation& inv, unsigned worker, Source source,
                                                    std::function<void()> first_failure = {});
  // Keeps an invalidation for replay. Past kMaxPending, the queue is dropped
  // and every entity is invalidated on recovery instead.
  void queue(Invalidation inv);
  // Every 100 ms while `timer` is not cancelled: replays what waits, unless
  // `store_refused()` (the breaker is open). `current` gives the snapshot
  // used to invalidate everything after an overflow.
  net::awaitable<void> replay_loop(std::shared_ptr<net::steady_timer> timer, std::function<bool()> store_refused,
                                   std::function<SnapshotPtr()> current);
  // Replays what waits once; false when the store is still away.
  // `store_refused` (the breaker is open), when given, is asked after an
  // item fails: while it says no, the rest of the batch is still tried.
  net::awaitable<bool> replay_once(std::function<SnapshotPtr()> current, std::function<bool()> store_refused = {});

  std::size_t pending() const;
  static constexpr std::size_t kMaxPending = 10000;
  // How often what could not reach the store is tried again.
  static constexpr std::chrono::milliseconds kRetryEvery{100};

 private:
  // L1: what an invalidation of `keys` at `at` (nullopt: the store was not
  // reached) means for this process's copies.
  void l1_invalidate(const std::vector<std::string>& keys, std::optional<std::uint64_t> at, Source source);

  std::vector<Store*> stores_;
  NearCache* l1_;
  std::string l1_channel_;
  metrics::Metrics* metrics_;
  WalPosition* wal_ = nullptr;
  std::function<void()> on_applied_;
  mutable std::mutex mu_;
  std::deque<Invalidation> pending_;
  bool overflow_ = false;  // too many: everything is invalidated on recovery
};

}  // namespace sidecache::cache

#pragma once
// The read path: L1 -> store -> (singleflight) -> fill -> store -> answer.
// Its rules (docs/architecture.md, docs/invalidation.md):
//   - concurrent misses on one key in this process make one fill;
//   - a request is never handed a read that began before an invalidation it
//     saw (reflects());
//   - a fill is stored only if no invalidation came after it began (the
//     store's commit);
//   - stale_while_revalidate, stale_if_error and XFetch early refresh;
//   - a leader that dies (exception, shutdown) still answers its waiters.
// It knows Redis and PostgreSQL only through Store and Filler, so
// tests/unit/cache/read_path_test.cpp runs it against fakes.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "sidecache/cache/wall_clock.hpp"
#include "sidecache/cache/filler.hpp"
#include "sidecache/cache/l1.hpp"
#include "sidecache/cache/request.hpp"
#include "sidecache/cache/cold_guess.hpp"
#include "sidecache/cache/singleflight.hpp"
#include "sidecache/cache/store.hpp"
#include "sidecache/metrics/metrics.hpp"

namespace sidecache::cache {

class Auditor;

// How one read was answered. Cache-Status and the metrics' outcome both
// come from it; nothing parses a header back.
struct ReadResult {
  enum class Kind {
    hit,                 // a fresh value from Redis
    l1_hit,              // a fresh value from this process's L1
    stale_revalidating,  // a value past its soft expiry, refreshed in the background
    stale_error,         // a value past its soft expiry, because the fill failed
    miss,                // filled here (stored says whether it was stored)
    collapsed,           // another request's fill, shared
    bypass,              // no-cache: filled regardless of the cache
  };
  Kind kind = Kind::miss;
  bool stored = false;
  bool too_large = false;              // over max_value_bytes: answered, not stored
  bool store_unknown = false;          // the store timed out: it may or may not have happened
  unsigned status = 200;
  std::string body;                    // the value (200), else the JSON error body
  std::optional<std::uint64_t> age_s;  // answers from a cached value: their age
  bool retry = false;                  // a 503 that says Retry-After: 1
};

// A cached value's result (a cached 404 too), with its age at `now`.
ReadResult cached_result(ReadResult::Kind kind, const config::Entity& e, const ValueHeader& h, std::string body,
                         std::uint64_t now);

// RFC 9211 Cache-Status for a result, e.g. "sidecache; fwd=miss; stored".
std::string cache_status(const ReadResult& r);
// Its parameters without the cache's name ("fwd=miss; stored"): a batch
// item's `cache`.
std::string cache_status_detail(const ReadResult& r);
// The `outcome` label: 5xx answers are errors unless a stale value served.
metrics::Outcome outcome_of(const ReadResult& r);

// What one fill (or the leader's second look in the store) produced; shared
// with every request that collapsed onto it.
struct FillOutcome {
  unsigned status = 500;  // 0: a background refresh that did nothing
  std::string body;       // JSON result, or the JSON error body
  ValueHeader header;
  bool from_cache = false;  // the leader found a fresh value in the store after all
  bool stored = false;
  bool too_large = false;   // over the entity's max_value_bytes: not stored
  bool store_unknown = false;  // the store got no answer in time: it may have happened
  bool retry = false;  // 503: Retry-After
  // When the read behind this outcome began (store clock); 0 when unknown
  // (the store was down). Waiters compare it with the invalidations they saw.
  std::uint64_t read_began_us = 0;
  // When it began by this process's clock (always known): a waiter that
  // could not read the store takes only a result read after it began.
  std::uint64_t read_began_wall_us = 0;
  // The watermarks of the value's column tags (stored with it; L1 keeps
  // them with its copy).
  std::vector<std::string> tag_keys;
};

class ReadPath {
 public:
  // stores[w] serves worker w; l1 and metrics may be null.
  ReadPath(std::vector<Store*> stores, Filler& filler, NearCache* l1 = nullptr, metrics::Metrics* metrics = nullptr);

  // Answers one entity request (req.snapshot set). no_cache: the caller
  // wants the database's answer (Cache-Control: no-cache).
  net::awaitable<ReadResult> get(const EntityRequest& req, bool no_cache, unsigned worker);

  // Answers many entity requests (each with its snapshot set), in their
  // order: L1, then one store lookup for the rest, then every other one as
  // get() would answer it, concurrently.
  net::awaitable<std::vector<ReadResult>> get_many(std::vector<EntityRequest> reqs, unsigned worker);

  // Callers waiting for another request's fill right now.
  std::size_t waiting() const { return flights_.waiting(); }
  // The XFetch draw, uniform in (0, 1] (tests fix it).
  void set_random(std::function<double()> draw) { draw_ = std::move(draw); }
  // Audits audit.sample of the hits (null: none).
  void set_auditor(Auditor* a) { auditor_ = a; }
  // An invalidation was answered (this process's clock): a request that
  // cannot read the store no longer takes a database read begun before.
  void invalidation_answered() { last_invalidation_wall_us_.store(wall_us(), std::memory_order_release); }

 private:
  using Flights = Singleflight<FillOutcome>;
  // How a fill treats another process's lease on the key.
  enum class LeaseMode {
    wait,  // wait (bounded) for that process's value; then fill anyway
    skip,  // a background refresh: someone is already on it, do nothing
    none,  // no-cache: fill regardless
  };
  class LeaderGuard;

  // The leader's work: look again (taking the lease), fill, store. `call`,
  // when given, is sealed just before the value is stored. `cold`: the
  // request did not look first (ColdGuess); the begin's look answers a
  // fresh value, and a value past its soft expiry gives status 0 (nothing
  // done: the caller looks as usual).
  net::awaitable<FillOutcome> lead_fill(Store& store, const EntityRequest& req, const std::vector<std::string>& keys,
                                        bool redis_ok, LeaseMode mode, Flights::Call* call = nullptr, bool cold = false);
  // As `call`'s leader: lead_fill (LeaseMode::wait), then hands the
  // outcome to every waiter. When the store could not be reached, the call
  // stays joinable a little longer (LeaderGuard::finish_after).
  net::awaitable<FillOutcome> lead(Store& store, const EntityRequest& req, const std::vector<std::string>& keys,
                                   Flights::CallPtr call, bool redis_ok, bool cold);
  // A led fill's answer: L1 keeps what was stored or found (`ticket`: L1
  // is on for this request), then a hit or a miss.
  ReadResult led_result(const EntityRequest& req, const NearCache::Ticket* ticket, const std::vector<std::string>& keys,
                        FillOutcome& o);
  // Reads PostgreSQL; with `begin` ok, the value is stored unless an
  // invalidation came after the fill began.
  net::awaitable<FillOutcome> fill_and_store(Store& store, const EntityRequest& req,
                                             const std::vector<std::string>& keys, const std::string& lease,
                                             const std::string& token, const Begin& begin, Flights::Call* call);
  // `floor`: the WAL position the answer must include (Filler::fill).
  net::awaitable<FillOutcome> fill(const EntityRequest& req, std::uint64_t start_us, std::optional<std::uint64_t> floor);
  // Counts a value over max_value_bytes, and says so once per entity.
  void warn_too_large(const config::Entity& e, std::size_t bytes);
  // One background refresh per key per process (stale-while-revalidate, XFetch).
  void spawn_refresh(const EntityRequest& req, unsigned worker, net::any_io_executor ex);
  net::awaitable<void> refresh(EntityRequest req, unsigned worker, Flights::CallPtr call);
  // L1: keeps a copy of a value just read from the store or stored, under
  // its keys and its column tags' watermarks.
  void l1_put(const EntityRequest& req, const NearCache::Ticket& t, const std::vector<std::string>& keys,
              const std::vector<std::string>& tag_keys, const ValueHeader& h, std::string_view body);
  // A fresh value found in the store (GET and batch alike): XFetch, a copy
  // in L1 when `ticket` is given, the audit's sample; its result.
  ReadResult serve_hit(const EntityRequest& req, unsigned worker, const std::vector<std::string>& keys,
                       const NearCache::Ticket* ticket, Lookup& seen, std::uint64_t now, net::any_io_executor ex);

  // A fill of a key in a batch group: waits for its siblings, then one
  // query of the entity's batch form fills them all (batch_group.hpp).
  net::awaitable<pg::FillResult> fill_in_group(const EntityRequest& req, std::optional<std::uint64_t> floor);
  void maybe_flush(const std::shared_ptr<BatchGroup>& g, net::any_io_executor ex);
  void flush(const std::shared_ptr<BatchGroup>& g, net::any_io_executor ex);
  // Whether this hit is sampled for the audit; audit() hands it over.
  bool audited(const Snapshot& s) const;
  void audit(const EntityRequest& req, unsigned worker, const ValueHeader& h, std::string_view body,
             net::any_io_executor ex);

  std::vector<Store*> stores_;
  Auditor* auditor_ = nullptr;
  std::atomic<std::uint64_t> last_invalidation_wall_us_{0};
  Filler& filler_;
  NearCache* l1_;
  metrics::Metrics* metrics_;
  Flights flights_;
  ColdGuess cold_;  // per worker: which entities' keys to fill without looking first
  std::function<double()> draw_;
  std::mutex warned_mu_;
  std::unordered_set<std::string> warned_large_;  // entities whose too-large value was logged
  std::mutex fills_mu_;
  std::unordered_map<std::string, std::size_t> fills_in_flight_;  // by entity, for max_concurrent_fills
};

}  // namespace sidecache::cache

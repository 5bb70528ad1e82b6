#pragma once
// The cache's protocol on one Redis server: every step that must be atomic
// is a Lua script, every time is Redis' TIME, and every call goes through
// the process's circuit breaker.
#include <boost/asio/any_completion_handler.hpp>

#include <memory>
#include <unordered_map>

#include "sidecache/cache/store.hpp"
#include "sidecache/metrics/metrics.hpp"
#include "sidecache/redis/circuit_breaker.hpp"
#include "sidecache/redis/client.hpp"
#include "sidecache/redis/connection.hpp"

namespace sidecache::cache {

// Interprets an MGET (or the begin script's) reply for `keys` (value key
// first, then watermarks). `tag_marks`: the watermarks of the value's column
// tags, read by the same script (an array reply); a tagged value read
// without them is a miss. Pure; unit-tested.
Lookup interpret(redis::Reply reply, std::size_t n_keys, std::uint64_t now_us,
                 const redis::Reply* tag_marks = nullptr);

class RedisStore final : public Store {
 public:
  // Every Redis call goes through `breaker` (shared by all workers): while
  // it is open, calls fail at once and Redis sees no traffic. Null on a
  // cluster, where each node has its own (redis::ClusterClient).
  RedisStore(std::shared_ptr<redis::Client> conn, redis::CircuitBreaker* breaker, metrics::Metrics* metrics = nullptr)
      : conn_(std::move(conn)), breaker_(breaker), metrics_(metrics) {}

  // One MGET: the value and its watermarks. A lookup of the same keys
  // issued on this connection and not yet written to Redis is shared instead
  // of sending another: Redis executes it after this call began, so it is as
  // fresh as a read of this call's own. (A stampede's requests, read in one
  // batch, make one Redis read per worker instead of one each.)
  // With column_tags, one script instead: the MGET and the watermarks the
  // value names.
  net::awaitable<Lookup> lookup(const std::vector<std::string>& keys, std::uint64_t now_us,
                                bool column_tags = false) override;
  // One MGET of every set's keys; each value's header is taken off its
  // bytes in place (no second copy of the body).
  net::awaitable<std::vector<Lookup>> lookup_many(const std::vector<std::vector<std::string>>& sets,
                                                  std::uint64_t now_us, const std::vector<bool>& column_tags = {}) override;
  // Looks again and reads Redis' clock, atomically: the fill's start time.
  // Also tries to take the key's lease (SET NX PX) with `token`, so that one
  // process in the whole fleet fills a cold key.
  net::awaitable<Begin> begin_fill(const KeyLayout& layout, const std::vector<std::string>& keys, const std::string& lease_key,
                                   const std::string& token, std::uint64_t lease_ttl_ms, std::uint64_t now_us,
                                   bool cold = false) override;
  // Stores `bytes` under keys[0] unless an invalidation in keys[1..] or on
  // the key itself (a tombstone or a newer value) is at or after
  // begin.start_us, or the connection is not begin's. Releases the lease if
  // `token` holds it, whatever the outcome.
  net::awaitable<Commit> commit(const KeyLayout& layout, const std::vector<std::string>& keys,
                                const std::string& lease_key, const std::string& token, const Begin& begin,
                                std::uint64_t max_age_us, std::string_view bytes, std::uint64_t ttl_ms) override;
  // Releases the lease after a fill that stored nothing.
  net::awaitable<void> release(const std::string& lease_key, const std::string& token) override;
  // Replaces one key with a tombstone; returns the invalidation time. The
  // same script publishes it on `channel` (every process's L1 listens; ''
  // for none), so no invalidation reaches Redis without its message.
  net::awaitable<std::optional<std::uint64_t>> tombstone(const KeyLayout& layout, const std::string& key, std::uint64_t ttl_ms,
                                                         const std::string& channel, std::uint64_t lsn) override;
  // Raises watermarks to Redis' current time and publishes them; returns it.
  net::awaitable<std::optional<std::uint64_t>> raise_watermarks(const KeyLayout& layout, const std::vector<std::string>& keys, std::uint64_t ttl_ms,
                                                                const std::string& channel, std::uint64_t lsn) override;

 private:
  // redis.invalidation_replicas: true once that many replicas have every
  // write of this connection so far (WAIT), or when it is 0.
  net::awaitable<bool> replicated(const std::string& key);
  // The watermark script on `keys` (one slot; their clock is added), with
  // its arguments: raise_watermarks() on one slot, and each slot's part of
  // raise_everywhere() when it goes slot by slot.
  net::awaitable<redis::Reply> raise_in_slot(const KeyLayout& layout, std::vector<std::string> keys, std::uint64_t ttl_ms,
                                             std::string_view channel, std::uint64_t lsn);
  // lookup_many() of sets that share a slot (one server: all of them).
  net::awaitable<std::vector<Lookup>> lookup_group(const std::vector<std::vector<std::string>>& sets,
                                                   std::uint64_t now_us, const std::vector<bool>& column_tags);
  // lookup_many() on a cluster: one lookup_group() per slot, all at once.
  net::awaitable<std::vector<Lookup>> lookup_by_slot(const std::vector<std::vector<std::string>>& sets,
                                                     std::uint64_t now_us, const std::vector<bool>& column_tags);
  // raise_watermarks() of marks that are everywhere on a cluster: one small
  // script per slot (a script touches one slot), pipelined per master, then
  // WAIT on every master and one message for every L1
  // (redis_store_cluster.cpp).
  net::awaitable<std::optional<std::uint64_t>> raise_everywhere(const KeyLayout& layout,
                                                                const std::vector<std::string>& keys,
                                                                std::uint64_t ttl_ms, const std::string& channel,
                                                                std::uint64_t lsn);
  bool warned_unreplicated_ = false;  // logged once per worker
  // The breaker's token for one call (0 without a process breaker);
  // nullopt: refused.
  std::optional<std::uint64_t> allow();
  // Runs one call under the breaker.
  net::awaitable<redis::Reply> guarded_mget(const std::vector<std::string>& keys, std::size_t split);
  net::awaitable<redis::Reply> guarded_eval(const redis::Script& script, const std::vector<std::string>& keys,
                                            const std::vector<std::string_view>& args, std::size_t split);
  net::awaitable<redis::Reply> guarded_command(std::string_view key, std::span<const std::string_view> argv,
                                               std::chrono::milliseconds timeout);

  // A lookup in flight that later lookups of its keys may share (see
  // lookup()). Lives in the issuing coroutine's frame; listed in
  // pending_lookups_ under its value key until its reply is in.
  struct SharedLookup {
    const std::vector<std::string>* keys;
    std::uint64_t writes;  // the connection's writes() when it was issued
    std::vector<std::pair<net::any_io_executor, net::any_completion_handler<void(redis::Reply)>>> joiners;
  };
  net::awaitable<redis::Reply> join(SharedLookup& l);

  // A lookup of an entity with column tags: one MGET with the tags the
  // value named last time (tag_hints_), or the script.
  net::awaitable<Lookup> lookup_tagged(const std::vector<std::string>& keys, std::uint64_t now_us);
  // Value key -> the column tags' watermark keys its value named when this
  // worker last read it by script. Bounded: cleared when full.
  static constexpr std::size_t kMaxTagHints = 16384;
  std::unordered_map<std::string, std::vector<std::string>> tag_hints_;  // this worker's only: no lock

  std::shared_ptr<redis::Client> conn_;
  std::unordered_map<std::string_view, SharedLookup*> pending_lookups_;  // this worker's only: no lock
  redis::CircuitBreaker* breaker_;
  metrics::Metrics* metrics_;
  void count_failure(const redis::Reply& r);
  // The breaker's verdict on a timed-out call, given when its reply comes
  // late (success) or the connection is lost or hung (failure).
  redis::LateVerdict late_verdict(std::uint64_t token);
  // Counts a failed call, and gives the breaker its verdict unless it timed out.
  void record(std::uint64_t token, const redis::Reply& r);
  // The reply of a call the open breaker refused (counted as breaker_open).
  redis::Reply refused_by_breaker();
};

}  // namespace sidecache::cache

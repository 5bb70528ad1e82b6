#pragma once
// L1: the in-process near cache in front of Redis (docs/architecture.md,
// "L1").
//
// - Bounded by bytes; every entry also has a short life (l1_ttl).
// - Eviction is S3-FIFO (Yang et al., SOSP 2023): a small FIFO that new keys
//   enter, a main FIFO with a 2-bit frequency per entry and a ghost list of
//   keys recently evicted from the small FIFO. A one-hit scan passes through
//   the small FIFO without touching the main one, so hot keys survive scans;
//   and unlike W-TinyLFU it needs no sketch and no LRU list to reorder on a
//   hit: a hit only bumps a counter.
// - Sharded by key hash, a mutex per shard: no global lock on the hit path.
// - Coherence: invalidations are recorded here as the Redis keys they raised
//   (watermarks, tombstones) with their Redis time, exactly as Redis stores
//   them. A global sequence number counts them; an entry remembers the
//   sequence it was last checked at, so a hit with no invalidation since
//   costs one atomic load, and otherwise the entry is judged again against
//   the recorded invalidations of its keys.
// - A put carries a Ticket taken before the value was read; it is refused if
//   L1 was disabled or flushed since (the invalidation feed was lost) or if
//   an invalidation of one of its keys is at or after the value's creation.
//
// Pure logic, no I/O: the clock is passed in. Thread-safe.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>
#include <deque>

#include "sidecache/cache/value.hpp"

namespace sidecache::cache {

class NearCache {
 public:
  using Clock = std::chrono::steady_clock;

  struct Ticket {
    std::uint64_t epoch = 0;
    bool valid = false;  // L1 was enabled when the ticket was taken
  };

  struct Stats {
    std::size_t entries = 0;
    std::size_t bytes = 0;
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
    std::uint64_t evictions = 0;       // pushed out by the byte bound
    std::uint64_t invalidated = 0;     // dropped because an invalidation covered them
    std::uint64_t refused_puts = 0;    // puts refused (stale ticket or newer invalidation)
    std::size_t invalidation_records = 0;
    bool enabled = false;
  };

  // `record_horizon`: how long a recorded invalidation is kept; it must be
  // longer than the longest l1_ttl and than the longest a fill may take.
  // `max_tenant_share`: no tenant holds more than this share of each
  // shard's bytes (1: no bound); a tenant over it evicts its own oldest
  // copies, never another tenant's.
  NearCache(std::size_t max_bytes, std::chrono::milliseconds record_horizon, double max_tenant_share = 1.0);
  ~NearCache();
  NearCache(const NearCache&) = delete;
  NearCache& operator=(const NearCache&) = delete;

  std::size_t max_bytes() const { return max_bytes_; }

  // Serves `key` if it holds a live, unexpired entry that no recorded
  // invalidation covers: copies the header and body out (the one copy).
  bool get(std::string_view key, Clock::time_point now, ValueHeader& header, std::string& body);

  // Take before reading the value (from Redis or PostgreSQL).
  Ticket ticket() const;
  // Stores a copy. `keys` are the Redis keys that can invalidate it: the
  // value key first, then its watermarks (cache::read_keys). `expires` is
  // when the copy stops being served. `tenant`: whose value it is ("" for a
  // global entity), for max_tenant_share.
  bool put(const Ticket& t, const std::vector<std::string>& keys, const ValueHeader& h, std::string_view body,
           Clock::time_point expires, Clock::time_point now, std::string_view tenant = {});

  // An invalidation: `key` (a watermark, or a value key for a tombstone) was
  // raised to `at_us` (Redis time). Entries covered by it are no longer
  // served; a value key's entry is dropped at once.
  void invalidate(std::string_view key, std::uint64_t at_us, Clock::time_point now);
  // An invalidation of `key` that could not reach Redis yet: its time is not
  // known, so every copy it covers goes now, and nothing it covers is kept
  // or served until release() (or until the record ages past the horizon).
  void hold(std::string_view key, Clock::time_point now);
  // That invalidation reached Redis at `at_us` (the replay's Redis time):
  // from now on it covers what was created up to then, like invalidate().
  void release(std::string_view key, std::uint64_t at_us, Clock::time_point now);
  // Forgets records older than the horizon (also done by every
  // invalidation; call it on a timer so records age out without one).
  void prune(Clock::time_point now);

  // Drops everything and stops serving and storing until enable().
  void disable();
  // Drops everything (anything may have been missed) and starts serving.
  void enable();
  bool enabled() const { return enabled_.load(std::memory_order_acquire); }

  Stats stats() const;
  // The bytes `tenant`'s copies take (entry_cost), over every shard.
  std::size_t tenant_bytes(std::string_view tenant) const;

 private:
  struct Entry;
  struct Shard;
  static std::uint64_t tenant_key(std::string_view tenant);
  static std::size_t entry_cost(const std::vector<std::string>& keys, std::size_t body_len);
  Shard& shard_of(std::string_view key, std::size_t& hash);
  // Newest recorded invalidation of any of `keys` (0 when none).
  std::uint64_t newest_invalidation(const std::vector<std::string>& keys);
  void flush();

  const std::size_t max_bytes_;
  const std::chrono::milliseconds horizon_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<bool> enabled_{false};
  std::atomic<std::uint64_t> epoch_{0};  // +1 on every enable/disable
  std::atomic<std::uint64_t> seq_{0};    // +1 on every invalidation

  // Recorded invalidations, by Redis key.
  struct Record {
    std::uint64_t at_us;       // the newest Redis time recorded
    unsigned holds = 0;        // invalidations of unknown time not yet released
    Clock::time_point received;
    std::uint64_t effective() const { return holds ? UINT64_MAX : at_us; }
  };
  // Records one invalidation of `key` and drops the entry it covers.
  void record(std::string_view key, Clock::time_point now, const std::function<void(Record&)>& change);
  void prune_locked(Clock::time_point now);
  mutable std::mutex records_mu_;
  std::unordered_map<std::string, Record> records_;
  std::deque<std::pair<std::string, Clock::time_point>> record_order_;  // for pruning
  std::atomic<std::uint64_t> invalidated_{0}, refused_{0};
};

}  // namespace sidecache::cache

namespace sidecache::cache {

// The pub/sub channel every process sharing `key_prefix` publishes its
// invalidations on: "<prefix>l1".
std::string l1_channel(std::string_view key_prefix);

// One message on that channel: "<redis time us>\n<key>[\n<key>...]".
struct L1Message {
  std::uint64_t at_us = 0;
  std::vector<std::string_view> keys;
};
// nullopt when the payload is not such a message.
std::optional<L1Message> parse_l1_message(std::string_view payload);

}  // namespace sidecache::cache

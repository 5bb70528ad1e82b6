#pragma once
// The cache's storage seam: reads that see invalidations in the same round
// trip, fills that can only store if no invalidation happened since they
// began, and the invalidations themselves.
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sidecache/cache/key_layout.hpp"
#include "sidecache/cache/value.hpp"

namespace sidecache::cache {

namespace net = boost::asio;

// What a read found.
struct Lookup {
  enum class Status {
    fresh,    // header/body hold a value to serve
    expired,  // header/body hold a valid value past its soft expiry (servable stale)
    miss,     // nothing usable: absent, invalidated or unreadable
    error,    // Redis failed; nothing is known
  };
  Status status = Status::miss;
  ValueHeader header;
  std::string body;
  std::uint64_t seen_watermark_us = 0;  // newest invalidation seen (watermarks and tombstone)
  // The highest WAL position recorded by those invalidations: a replica
  // that has not replayed this far may still hold what they invalidated.
  std::uint64_t floor_lsn = 0;
  // A value with column tags: their watermark keys (judged with it).
  std::vector<std::string> tag_keys;
  std::string error;
};

// Result of starting a fill.
struct Begin {
  bool ok = false;            // false: Redis failed, the fill cannot be stored
  std::uint64_t start_us = 0; // the slot's clock when the fill began (Redis TIME or later)
  std::uint64_t session = 0;  // the connection it went over (redis::Client::session)
  bool leased = false;        // this process holds the key's lease: it fills, others wait
  // A cold begin found a value (not a tombstone): it was only a look. No
  // lease was tried and the clock was not moved, so start_us is no fill's
  // start: a fill must begin again.
  bool only_looked = false;
  Lookup lookup;              // the second look at the key
};

enum class Commit {
  stored,       // the value is in Redis
  invalidated,  // an invalidation (or a newer fill) came after the fill began: not stored
  too_old,      // the fill began longer ago than tombstones are kept: not stored
  error,        // Redis failed: not stored
  unknown,      // no answer in time: the store may or may not have happened
};

// The cache's protocol, whatever Redis topology is behind it. Every call
// reports Redis failure in its result instead of throwing; the read path
// then reads PostgreSQL. RedisStore (one Redis server) implements it; unit
// tests use an in-memory fake.
class Store {
 public:
  virtual ~Store() = default;

  // The value and its watermarks (value key first, then the watermarks that
  // cover it). `column_tags`: the entity has column tags, whose watermarks
  // the value names; they are read in the same round trip. A value that
  // names some is never served without them.
  virtual net::awaitable<Lookup> lookup(const std::vector<std::string>& keys, std::uint64_t now_us,
                                        bool column_tags = false) = 0;
  // Several lookups at once (a batch read): RedisStore makes them one MGET
  // (one script when some set has column tags: column_tags[i]). This
  // default makes them one by one.
  virtual net::awaitable<std::vector<Lookup>> lookup_many(const std::vector<std::vector<std::string>>& sets,
                                                          std::uint64_t now_us,
                                                          const std::vector<bool>& column_tags = {}) {
    std::vector<Lookup> out;
    out.reserve(sets.size());
    for (std::size_t i = 0; i < sets.size(); ++i)
      out.push_back(co_await lookup(sets[i], now_us, i < column_tags.size() && column_tags[i]));
    co_return out;
  }
  // Looks again (column tags included) and reads the store's clock,
  // atomically: the fill's start time. Also tries to take the key's lease with `token`, so that one
  // process in the whole fleet fills a cold key. `layout` names the clock.
  // `cold`: the caller did not look first (a key it expects to be cold);
  // if a value other than a tombstone is there, the begin is only that
  // look (Begin::only_looked).
  virtual net::awaitable<Begin> begin_fill(const KeyLayout& layout, const std::vector<std::string>& keys, const std::string& lease_key,
                                           const std::string& token, std::uint64_t lease_ttl_ms,
                                           std::uint64_t now_us, bool cold = false) = 0;
  // Stores `bytes` under keys[0] unless an invalidation in keys[1..] (the
  // value's column tags' watermarks included) or on the key itself (a
  // tombstone or a newer value) is at or after begin.start_us, and only
  // over begin's connection. Releases the lease if `token` holds it,
  // whatever the outcome.
  virtual net::awaitable<Commit> commit(const KeyLayout& layout, const std::vector<std::string>& keys,
                                        const std::string& lease_key, const std::string& token, const Begin& begin,
                                        std::uint64_t max_age_us,
                                        std::string_view bytes, std::uint64_t ttl_ms) = 0;
  // Releases the lease after a fill that stored nothing.
  virtual net::awaitable<void> release(const std::string& lease_key, const std::string& token) = 0;
  // Replaces one key with a tombstone; returns the invalidation time, and
  // publishes it on `channel` ('' for none) for every process's L1. `lsn`
  // (0: none) is the primary's WAL position, kept with it for Lookup::floor_lsn.
  virtual net::awaitable<std::optional<std::uint64_t>> tombstone(const KeyLayout& layout, const std::string& key, std::uint64_t ttl_ms,
                                                                 const std::string& channel, std::uint64_t lsn) = 0;
  // Raises watermarks to the store's current time, and their WAL positions
  // to `lsn`, and publishes them; returns that time. On a cluster, a mark
  // that is everywhere (KeyLayout::everywhere) is raised in every slot,
  // and the newest of their times is returned.
  virtual net::awaitable<std::optional<std::uint64_t>> raise_watermarks(const KeyLayout& layout,
                                                                        const std::vector<std::string>& keys,
                                                                        std::uint64_t ttl_ms, const std::string& channel,
                                                                        std::uint64_t lsn) = 0;
};

}  // namespace sidecache::cache

#pragma once
// The Lua scripts of the cache's Redis protocol (RedisStore). Private to
// the cache module. Each is atomic in Redis; every time is the slot's clock
// (Redis TIME, kept from going back by the clock key, the last of KEYS).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "sidecache/pg/lsn.hpp"
#include "sidecache/redis/connection.hpp"

namespace sidecache::cache::scripts {

// A time in a script's reply (microseconds of the slot's clock).
inline std::uint64_t parse_us(const std::string& s) { return std::strtoull(s.c_str(), nullptr, 10); }

// Why a call failed, for the log.
inline std::string failure_text(const redis::Reply& r) {
  if (r.status == redis::Reply::Status::timeout) return "no answer within redis.timeout";
  return r.error.empty() ? std::string("unexpected reply") : r.error;
}

// MGET(KEYS), then per ARGV[i] (the position in KEYS of a value key of an
// entity with column tags) the tag watermarks that value names, as element
// #KEYS + i: an array, empty for an untagged value. One lookup passes "1".
extern const redis::Script kLookupTagged;
// KEYS: value key, watermarks, lease key, clock. ARGV: token, lease_ttl_ms,
// cold ('1' or ''). Returns MGET(value, watermarks), then now, then 1 if the
// lease was taken (0: another holds it; 2: a cold begin found a value that
// is not a tombstone, took no lease and did not move the clock), then the
// value's tag watermarks (an array).
extern const redis::Script kBegin;
// KEYS: value key, watermarks (column tags' included), lease key, clock.
// ARGV: start_us, max_age_us, bytes, ttl_ms, token. Releases the lease held
// by token, then: 1 stored, 0 invalidated (watermark, tombstone or newer
// value at or after start, or a clock behind start), -1 too old.
extern const redis::Script kCommit;
// KEYS: lease key. ARGV: token. Deletes the lease if token holds it.
extern const redis::Script kRelease;
// KEYS: value key, clock. ARGV: ttl_ms, L1 channel, WAL position. Writes a tombstone.
extern const redis::Script kTombstone;
// KEYS: watermarks, clock. ARGV: ttl_ms, L1 channel, WAL position. Raises them.
extern const redis::Script kWatermark;
// KEYS: one key of the server. ARGV: ttl_ms, WAL position, n, then per slot
// its clock and n watermark copies. Raises them all on this server, each
// slot at its own clock; returns the newest time (docs/invalidation.md,
// "Redis Cluster").
extern const redis::Script kWatermarkSlots;

// The scripts' WAL position argument: '' for none (0), else 16 hex digits.
inline std::string lsn_arg(std::uint64_t lsn) { return lsn ? pg::lsn_hex(lsn) : std::string(); }

}  // namespace sidecache::cache::scripts

#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sidecache::cache {

// The fixed-size binary header stored in front of every cached JSON body.
// It lets a hit be answered without parsing the JSON: the bytes after the
// header are the response body as they are. Times are microseconds since
// the epoch. created_us is Redis' clock (TIME) when the fill began, and is
// compared only with other Redis times (watermarks, tombstones), so
// invalidation needs no agreement between clocks. soft_expiry_us is
// created_us plus the TTL, and readers compare it with their own wall clock:
// expiry is as exact as NTP keeps the pods and Redis together.
struct ValueHeader {
  static constexpr std::uint8_t kNegative = 0x01;   // "no such row": answer 404
  static constexpr std::uint8_t kTombstone = 0x02;  // an invalidated key; created_us is when
  static constexpr std::uint8_t kTagged = 0x04;     // column tags follow the body (see below)

  std::uint8_t flags = 0;
  std::uint32_t fill_us = 0;         // how long the fill took (for early refresh)
  std::uint64_t created_us = 0;      // when the fill began (before it read PostgreSQL)
  std::uint64_t soft_expiry_us = 0;  // after this the value is no longer fresh

  bool negative() const { return flags & kNegative; }
  bool tombstone() const { return flags & kTombstone; }
  bool tagged() const { return flags & kTagged; }
};

// Layout (little-endian), also read by the Lua scripts in src/cache/store.cpp:
//   0 'S' 'C' | 2 version | 3 flags | 4 fill_us u32 | 8 created_us u64 | 16 soft_expiry_us u64 | 24 body
inline constexpr std::size_t kValueHeaderSize = 24;
inline constexpr std::uint8_t kValueVersion = 1;

// A tagged value (kTagged) ends with its column tags' watermark keys, so
// that a read (a script) finds them in the value itself:
//   24 body | keys joined by '\n' | u16 length of those keys
// They sit after the body so that taking them off costs no copy.
//
// Header followed by the body (and `tag_keys`, when any: the flag is set),
// ready for a Redis SET.
std::string encode_value(const ValueHeader& h, std::string_view body, const std::vector<std::string>& tag_keys = {});

// Takes a tagged value's keys off the end of `body` (the bytes after the
// header); nullopt, and `body` untouched, when they are not well formed.
std::optional<std::vector<std::string>> take_tag_keys(std::string& body);

// Reads the header from the first kValueHeaderSize bytes; nullopt when the
// bytes are not a value of this version (treated as a miss).
std::optional<ValueHeader> decode_header(std::string_view bytes);

// What a stored value is worth to a reader.
enum class Verdict {
  fresh,        // serve it
  expired,      // past its soft expiry
  invalidated,  // a tombstone, or created no later than an invalidation that covers it
};

// Judges a value against the newest applicable invalidation (watermark_us, 0
// when none) and the current time. A value whose fill began at the very
// microsecond of an invalidation counts as invalidated: ties go to the
// invalidation.
Verdict judge(const ValueHeader& h, std::uint64_t watermark_us, std::uint64_t now_us);

// Whether a request that saw invalidations up to `seen_watermark_us` may take
// a result whose read began at `read_began_us`. A request must not be handed
// a read that began before an invalidation it has already observed.
inline bool reflects(std::uint64_t read_began_us, std::uint64_t seen_watermark_us) {
  return read_began_us > seen_watermark_us;
}

}  // namespace sidecache::cache

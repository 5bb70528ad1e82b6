#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sidecache::cache {

// The fixed-size binary header stored in front of every cached JSON body.
// It lets a hit be answered without parsing the JSON: the bytes after the
// header are the response body as they are.
struct ValueHeader {
  static constexpr std::uint8_t kNegative = 0x01;  // "no such row": answer 404

  std::uint8_t flags = 0;
  std::uint32_t fill_us = 0;        // how long the fill took (for early refresh)
  std::uint64_t created_ms = 0;     // unix ms when the value was read from PostgreSQL
  std::uint64_t soft_expiry_ms = 0; // unix ms after which the value is no longer fresh

  bool negative() const { return flags & kNegative; }
};

// Layout (little-endian): 'S' 'C' version flags | fill_us u32 | created_ms u64 | soft_expiry_ms u64
inline constexpr std::size_t kValueHeaderSize = 24;
inline constexpr std::uint8_t kValueVersion = 1;

// Header followed by the body, ready for a Redis SET.
std::string encode_value(const ValueHeader& h, std::string_view body);

// Reads the header from the first kValueHeaderSize bytes; nullopt when the
// bytes are not a value of this version (treated as a miss).
std::optional<ValueHeader> decode_header(std::string_view bytes);

}  // namespace sidecache::cache

#include "sidecache/cache/value.hpp"

namespace sidecache::cache {
namespace {

template <class T>
void put(std::string& out, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

template <class T>
T get(std::string_view in, std::size_t at) {
  T v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  return v;
}

}  // namespace

std::string encode_value(const ValueHeader& h, std::string_view body) {
  std::string out;
  out.reserve(kValueHeaderSize + body.size());
  out += 'S';
  out += 'C';
  out += static_cast<char>(kValueVersion);
  out += static_cast<char>(h.flags);
  put<std::uint32_t>(out, h.fill_us);
  put<std::uint64_t>(out, h.created_us);
  put<std::uint64_t>(out, h.soft_expiry_us);
  out.append(body);
  return out;
}

std::optional<ValueHeader> decode_header(std::string_view in) {
  if (in.size() < kValueHeaderSize || in[0] != 'S' || in[1] != 'C' ||
      static_cast<std::uint8_t>(in[2]) != kValueVersion)
    return std::nullopt;
  ValueHeader h;
  h.flags = static_cast<std::uint8_t>(in[3]);
  h.fill_us = get<std::uint32_t>(in, 4);
  h.created_us = get<std::uint64_t>(in, 8);
  h.soft_expiry_us = get<std::uint64_t>(in, 16);
  return h;
}

Verdict judge(const ValueHeader& h, std::uint64_t watermark_us, std::uint64_t now_us) {
  if (h.tombstone() || h.created_us <= watermark_us) return Verdict::invalidated;
  if (now_us >= h.soft_expiry_us) return Verdict::expired;
  return Verdict::fresh;
}

}  // namespace sidecache::cache

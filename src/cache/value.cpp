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

std::string encode_value(const ValueHeader& h, std::string_view body, const std::vector<std::string>& tag_keys) {
  std::string section;
  for (const auto& k : tag_keys) {
    if (!section.empty()) section += '\n';
    section += k;
  }
  const bool tagged = !section.empty() && section.size() <= 0xffff;
  std::string out;
  out.reserve(kValueHeaderSize + body.size() + (tagged ? section.size() + 2 : 0));
  out += 'S';
  out += 'C';
  out += static_cast<char>(kValueVersion);
  out += static_cast<char>(tagged ? (h.flags | ValueHeader::kTagged) : (h.flags & ~ValueHeader::kTagged));
  put<std::uint32_t>(out, h.fill_us);
  put<std::uint64_t>(out, h.created_us);
  put<std::uint64_t>(out, h.soft_expiry_us);
  out.append(body);
  if (tagged) {
    out += section;
    put<std::uint16_t>(out, static_cast<std::uint16_t>(section.size()));
  }
  return out;
}

std::optional<std::vector<std::string>> take_tag_keys(std::string& body) {
  if (body.size() < 2) return std::nullopt;
  std::size_t n = get<std::uint16_t>(body, body.size() - 2);
  if (n == 0 || n + 2 > body.size()) return std::nullopt;
  std::string_view section(body.data() + body.size() - 2 - n, n);
  std::vector<std::string> keys;
  for (std::size_t at = 0; at <= section.size();) {
    std::size_t nl = section.find('\n', at);
    if (nl == std::string_view::npos) nl = section.size();
    if (nl == at) return std::nullopt;  // an empty key
    keys.emplace_back(section.substr(at, nl - at));
    at = nl + 1;
  }
  body.resize(body.size() - 2 - n);
  return keys;
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

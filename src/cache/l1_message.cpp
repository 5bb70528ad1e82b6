// The L1 invalidation channel and its messages.
#include "sidecache/cache/l1.hpp"

namespace sidecache::cache {

std::string l1_channel(std::string_view key_prefix) { return std::string(key_prefix) + "l1"; }

std::optional<L1Message> parse_l1_message(std::string_view payload) {
  std::size_t nl = payload.find('\n');
  if (nl == std::string_view::npos || nl == 0 || nl > 20) return std::nullopt;
  L1Message m;
  for (char c : payload.substr(0, nl)) {
    if (c < '0' || c > '9') return std::nullopt;
    m.at_us = m.at_us * 10 + static_cast<std::uint64_t>(c - '0');
  }
  std::string_view rest = payload.substr(nl + 1);
  while (!rest.empty()) {
    std::size_t end = rest.find('\n');
    std::string_view k = rest.substr(0, end);
    if (k.empty()) return std::nullopt;
    m.keys.push_back(k);
    if (end == std::string_view::npos) break;
    rest = rest.substr(end + 1);
    if (rest.empty()) return std::nullopt;  // a trailing newline
  }
  if (m.keys.empty()) return std::nullopt;
  return m;
}

}  // namespace sidecache::cache

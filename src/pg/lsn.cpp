#include "sidecache/pg/lsn.hpp"

namespace sidecache::pg {
namespace {

std::optional<Lsn> hex_part(std::string_view s, std::size_t max_digits) {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  Lsn v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else return std::nullopt;
    v = v * 16 + static_cast<Lsn>(d);
  }
  return v;
}

void append_hex(std::string& out, Lsn v, int digits, bool pad) {
  static const char* kDigits = "0123456789ABCDEF";
  bool started = pad;
  for (int i = digits - 1; i >= 0; --i) {
    int d = static_cast<int>((v >> (i * 4)) & 0xF);
    if (d || started || i == 0) {
      out.push_back(kDigits[d]);
      started = true;
    }
  }
}

}  // namespace

std::optional<Lsn> parse_lsn(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto hi = hex_part(text.substr(0, slash), 8);
  auto lo = hex_part(text.substr(slash + 1), 8);
  if (!hi || !lo) return std::nullopt;
  return (*hi << 32) | *lo;
}

std::string format_lsn(Lsn lsn) {
  std::string out;
  append_hex(out, lsn >> 32, 8, false);
  out.push_back('/');
  append_hex(out, lsn & 0xFFFFFFFFu, 8, false);
  return out;
}

std::string lsn_hex(Lsn lsn) {
  std::string out;
  append_hex(out, lsn, 16, true);
  return out;
}

Lsn settled_insert_lsn(Lsn insert, std::uint32_t wal_block_size) {
  if (wal_block_size == 0) return insert;
  Lsn off = insert % wal_block_size;
  return off == 24 || off == 40 ? insert - off : insert;
}

std::optional<Lsn> parse_lsn_hex(std::string_view text) {
  if (text.size() != 16) return std::nullopt;
  return hex_part(text, 16);
}

}  // namespace sidecache::pg

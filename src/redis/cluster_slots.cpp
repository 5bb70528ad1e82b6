#include "sidecache/redis/cluster_slots.hpp"

#include <hiredis/hiredis.h>

#include <array>
#include <charconv>

namespace sidecache::redis {

namespace {

constexpr std::array<std::uint16_t, 256> crc_table() {
  std::array<std::uint16_t, 256> t{};
  for (unsigned i = 0; i < 256; ++i) {
    std::uint16_t c = static_cast<std::uint16_t>(i << 8);
    for (int b = 0; b < 8; ++b) c = static_cast<std::uint16_t>(c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1);
    t[i] = c;
  }
  return t;
}
constexpr auto kCrcTable = crc_table();

std::optional<std::uint16_t> port_of(std::string_view s) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v == 0 || v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

std::string_view text_of(const redisReply* r) {
  bool text = r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR);
  return text ? std::string_view(r->str, r->len) : std::string_view();
}

// [ip, port, id?, ...] in CLUSTER SLOTS.
std::optional<Node> node_of_reply(const redisReply* r) {
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2) return std::nullopt;
  const redisReply* port = r->element[1];
  if (!port || port->type != REDIS_REPLY_INTEGER || port->integer <= 0 || port->integer > 65535) return std::nullopt;
  if (!r->element[0] || r->element[0]->type != REDIS_REPLY_STRING) return std::nullopt;
  Node n;
  n.host = std::string(text_of(r->element[0]));
  if (n.host == "?") n.host.clear();  // an unknown endpoint: the node that answered
  n.port = static_cast<std::uint16_t>(port->integer);
  if (r->elements >= 3) n.id = std::string(text_of(r->element[2]));
  return n;
}

}  // namespace

std::uint16_t crc16(std::string_view bytes) {
  std::uint16_t crc = 0;
  for (unsigned char c : bytes) crc = static_cast<std::uint16_t>((crc << 8) ^ kCrcTable[((crc >> 8) ^ c) & 0xff]);
  return crc;
}

std::string_view hashed_part(std::string_view key) {
  auto open = key.find('{');
  if (open == std::string_view::npos) return key;
  auto close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}

std::uint16_t key_slot(std::string_view key) { return crc16(hashed_part(key)) & (kSlots - 1); }

const std::string& tag_of_slot(std::uint16_t slot) {
  // The first base-36 numeral that hashes to each slot: found once, by
  // counting up (about 170,000 numerals cover all 16,384 slots).
  static const std::vector<std::string> tags = [] {
    std::vector<std::string> t(kSlots);
    std::size_t found = 0;
    for (std::uint64_t n = 0; found < kSlots; ++n) {
      char buf[16];
      char* end = buf + sizeof buf;
      char* p = end;
      std::uint64_t v = n;
      do {
        *--p = "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36];
        v /= 36;
      } while (v);
      std::string_view s(p, static_cast<std::size_t>(end - p));
      std::uint16_t slot = crc16(s) & (kSlots - 1);
      if (t[slot].empty()) {
        t[slot] = std::string(s);
        ++found;
      }
    }
    return t;
  }();
  return tags[slot % kSlots];
}

std::optional<std::vector<SlotRange>> parse_cluster_slots(const redisReply* reply, std::string& why) {
  if (!reply || reply->type != REDIS_REPLY_ARRAY) {
    why = reply && reply->type == REDIS_REPLY_ERROR ? "CLUSTER SLOTS failed: " + std::string(text_of(reply))
                                                     : "CLUSTER SLOTS did not answer an array";
    return std::nullopt;
  }
  std::vector<SlotRange> out;
  for (std::size_t i = 0; i < reply->elements; ++i) {
    const redisReply* e = reply->element[i];
    if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 3 || !e->element[0] || !e->element[1] ||
        e->element[0]->type != REDIS_REPLY_INTEGER || e->element[1]->type != REDIS_REPLY_INTEGER) {
      why = "CLUSTER SLOTS entry " + std::to_string(i) + " is not [first, last, master, replicas...]";
      return std::nullopt;
    }
    long long first = e->element[0]->integer, last = e->element[1]->integer;
    if (first < 0 || last < first || last >= kSlots) {
      why = "CLUSTER SLOTS entry " + std::to_string(i) + " has slots " + std::to_string(first) + "-" + std::to_string(last);
      return std::nullopt;
    }
    SlotRange r;
    r.first = static_cast<std::uint16_t>(first);
    r.last = static_cast<std::uint16_t>(last);
    auto master = node_of_reply(e->element[2]);
    if (!master) {
      why = "CLUSTER SLOTS entry " + std::to_string(i) + " has no master [host, port]";
      return std::nullopt;
    }
    r.master = *master;
    for (std::size_t j = 3; j < e->elements; ++j)
      if (auto rep = node_of_reply(e->element[j])) r.replicas.push_back(*rep);
    out.push_back(std::move(r));
  }
  return out;
}

int SlotMap::add(const Node& n) {
  for (std::size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i] == n) return static_cast<int>(i);
  nodes_.push_back(n);
  return static_cast<int>(nodes_.size() - 1);
}

std::optional<SlotMap> SlotMap::from(const std::vector<SlotRange>& ranges, std::string& why) {
  SlotMap m;
  for (const auto& r : ranges) {
    int owner = m.add(r.master);
    for (unsigned s = r.first; s <= r.last; ++s) {
      if (m.owner_[s] >= 0 && m.owner_[s] != owner) {
        why = "CLUSTER SLOTS gives slot " + std::to_string(s) + " to two masters";
        return std::nullopt;
      }
      m.owner_[s] = static_cast<std::int16_t>(owner);
    }
  }
  return m;
}

void SlotMap::move(std::uint16_t slot, const Node& to) { owner_[slot % kSlots] = static_cast<std::int16_t>(add(to)); }

std::size_t SlotMap::covered() const {
  std::size_t n = 0;
  for (auto o : owner_) n += o >= 0;
  return n;
}

std::optional<Redirect> parse_redirect(std::string_view error) {
  Redirect r;
  if (error.rfind("MOVED ", 0) == 0) {
    r.kind = Redirect::Kind::moved;
    error.remove_prefix(6);
  } else if (error.rfind("ASK ", 0) == 0) {
    r.kind = Redirect::Kind::ask;
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  auto sp = error.find(' ');
  if (sp == std::string_view::npos) return std::nullopt;
  unsigned slot = 0;
  auto [p, ec] = std::from_chars(error.data(), error.data() + sp, slot);
  if (ec != std::errc() || p != error.data() + sp || slot >= kSlots) return std::nullopt;
  r.slot = static_cast<std::uint16_t>(slot);
  std::string_view where = error.substr(sp + 1);
  auto colon = where.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  auto port = port_of(where.substr(colon + 1));
  if (!port) return std::nullopt;
  r.to.host = std::string(where.substr(0, colon));
  r.to.port = *port;
  return r;
}

bool retryable_cluster_error(std::string_view error) {
  return error.rfind("TRYAGAIN", 0) == 0 || error.rfind("CLUSTERDOWN", 0) == 0;
}

}  // namespace sidecache::redis

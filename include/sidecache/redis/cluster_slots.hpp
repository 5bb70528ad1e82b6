#pragma once
// Redis Cluster's key space, as the cluster specification defines it, and
// the replies that describe it: CLUSTER SLOTS and the MOVED / ASK
// redirections. Pure functions (no I/O): the cluster router is built on
// them, and the fuzz build links them.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct redisReply;

namespace sidecache::redis {

constexpr std::uint16_t kSlots = 16384;

// CRC16-CCITT (XModem): polynomial 0x1021, initial 0, no reflection; the
// specification's check value: crc16("123456789") == 0x31C3.
std::uint16_t crc16(std::string_view bytes);
// What of `key` is hashed: the text between its first '{' and the first
// '}' after it when that is not empty (its hash tag), else the whole key.
std::string_view hashed_part(std::string_view key);
// crc16(hashed_part(key)) mod 16384.
std::uint16_t key_slot(std::string_view key);
// A short hash tag (letters and digits) whose slot is `slot`: a key that
// starts with "{" + tag_of_slot(s) + "}" lives in slot s.
const std::string& tag_of_slot(std::uint16_t slot);

struct Node {
  std::string host;  // empty: the same host as the node that answered
  std::uint16_t port = 0;
  std::string id;  // empty when not given
  bool operator==(const Node& o) const { return host == o.host && port == o.port; }
  std::string address() const { return host + ":" + std::to_string(port); }
};

struct SlotRange {
  std::uint16_t first = 0, last = 0;
  Node master;
  std::vector<Node> replicas;
};

// CLUSTER SLOTS' reply as hiredis reads it, or nullopt and why it is not one.
std::optional<std::vector<SlotRange>> parse_cluster_slots(const redisReply* reply, std::string& why);

// Which master serves each slot.
class SlotMap {
 public:
  // From CLUSTER SLOTS' ranges; a slot no range names has no owner
  // (node_of() < 0: the cluster is partly down). Overlapping ranges are
  // refused, with why.
  static std::optional<SlotMap> from(const std::vector<SlotRange>& ranges, std::string& why);
  // The index in nodes() of the master of `slot`, or -1.
  int node_of(std::uint16_t slot) const { return owner_[slot]; }
  const std::vector<Node>& nodes() const { return nodes_; }
  // A MOVED redirection: `slot` is served by `to` from now on.
  void move(std::uint16_t slot, const Node& to);
  // How many slots have an owner.
  std::size_t covered() const;

 private:
  int add(const Node& n);
  std::vector<Node> nodes_;
  std::vector<std::int16_t> owner_ = std::vector<std::int16_t>(kSlots, -1);
};

struct Redirect {
  enum class Kind { moved, ask };
  Kind kind = Kind::moved;
  std::uint16_t slot = 0;
  Node to;
};
// "MOVED 3999 127.0.0.1:6381" or "ASK 3999 10.0.0.2:6379" (an error
// reply's text), else nullopt. The host may be empty ("MOVED 3999 :6381":
// the node that answered) or IPv6 (the port follows the last ':').
std::optional<Redirect> parse_redirect(std::string_view error);
// TRYAGAIN (a multi-key command during a slot's migration) and CLUSTERDOWN:
// worth a short, bounded retry.
bool retryable_cluster_error(std::string_view error);

}  // namespace sidecache::redis

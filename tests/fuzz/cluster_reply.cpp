// Bytes from a Redis Cluster node, read as RESP by hiredis' reader: each
// reply is taken as CLUSTER SLOTS' (the slot map built from it must give
// every slot it names one owner) and, when it is an error, as a MOVED/ASK
// redirection (the slot and port are in range). The input's text is also
// taken as a key: its slot is its hash tag's.
#include <hiredis/hiredis.h>

#include <cstdint>
#include <string>

#include "sidecache/redis/cluster_slots.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sidecache::redis;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (key_slot(text) != (crc16(hashed_part(text)) & (kSlots - 1))) __builtin_trap();
  if (hashed_part(text).size() > text.size()) __builtin_trap();

  // hiredis 0.14 allocates an array reply's element pointers up front, so
  // "*546139381" asks for gigabytes (it answers "out of memory" when calloc
  // fails; the fuzzer's malloc limit stops first). Such headers are skipped.
  for (std::size_t i = 0; i + 1 < size; ++i)
    if (data[i] == '*' && text.find_first_not_of("0123456789", i + 1) > i + 6) return 0;
  redisReader* reader = redisReaderCreate();
  redisReaderFeed(reader, text.data(), text.size());
  for (int n = 0; n < 16; ++n) {
    void* r = nullptr;
    if (redisReaderGetReply(reader, &r) != REDIS_OK || !r) break;
    auto* reply = static_cast<redisReply*>(r);
    std::string why;
    if (auto ranges = parse_cluster_slots(reply, why)) {
      if (auto map = SlotMap::from(*ranges, why)) {
        for (const auto& range : *ranges) {
          int owner = map->node_of(range.first);
          if (owner < 0 || !(map->nodes()[static_cast<std::size_t>(owner)] == range.master)) __builtin_trap();
        }
      } else if (why.empty()) {
        __builtin_trap();  // a refusal says why
      }
    } else if (why.empty()) {
      __builtin_trap();
    }
    if (reply->type == REDIS_REPLY_ERROR) {
      if (auto redirect = parse_redirect(std::string_view(reply->str, reply->len)))
        if (redirect->slot >= kSlots || redirect->to.port == 0) __builtin_trap();
    }
    freeReplyObject(reply);
  }
  redisReaderFree(reader);
  return 0;
}

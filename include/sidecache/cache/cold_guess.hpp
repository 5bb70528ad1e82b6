#pragma once
// Which entities' keys a worker expects to find cold, from how its recent
// looks at each entity went. A request for such a key skips the lookup
// and leads its fill at once: the begin script's own look at the key
// stands for the lookup (docs/architecture.md, "Where the miss path's
// time goes"), which spares a cold read one Redis round trip.
//
// A wrong guess is cheap: a cold begin that finds a value takes no lease
// and moves no clock, so a hit costs one script instead of one MGET. Only
// a value past its soft expiry costs a round trip more (the read path
// then looks as usual).
#include <bit>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace sidecache::cache {

class ColdGuess {
 public:
  // The last kWindow looks at an entity; cold when at least kColdAt of
  // them found nothing usable.
  static constexpr int kWindow = 16;
  static constexpr int kColdAt = 12;

  explicit ColdGuess(std::size_t workers) : by_worker_(workers) {}

  // Called on `worker`'s own thread only: each worker has its own map.
  bool cold(unsigned worker, const std::string& entity) const {
    const auto& m = by_worker_[worker];
    auto it = m.find(entity);
    return it != m.end() && it->second.seen >= kWindow && std::popcount(it->second.misses) >= kColdAt;
  }

  // A look at one of the entity's keys found nothing usable (`miss`: absent
  // or invalidated) or a value (fresh or past its soft expiry).
  void record(unsigned worker, const std::string& entity, bool miss) {
    auto& m = by_worker_[worker];
    if (m.size() >= kMaxEntities && !m.contains(entity)) m.clear();  // names gone with a reload
    History& h = m[entity];
    h.misses = static_cast<std::uint16_t>((h.misses << 1) | (miss ? 1u : 0u));
    if (h.seen < kWindow) ++h.seen;
  }

 private:
  static constexpr std::size_t kMaxEntities = 4096;
  struct History {
    std::uint16_t misses = 0;  // one bit per look, newest lowest
    std::uint8_t seen = 0;
  };
  static_assert(kWindow == 16, "History::misses holds kWindow bits");
  std::vector<std::unordered_map<std::string, History>> by_worker_;
};

}  // namespace sidecache::cache

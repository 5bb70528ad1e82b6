#pragma once
// This machine's wall clock in microseconds since the epoch: what a value's
// soft expiry is compared with (values carry times of the store's clock,
// which NTP keeps close to it).
#include <chrono>
#include <cstdint>

namespace sidecache::cache {

inline std::uint64_t wall_us() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

}  // namespace sidecache::cache

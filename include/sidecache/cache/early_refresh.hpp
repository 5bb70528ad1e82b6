#pragma once
// Probabilistic early refresh (XFetch, Vattani et al.): refresh a value
// before it expires with a probability that grows as expiry nears and with
// how long the value takes to compute, so a hot key is refreshed by one
// request in the background instead of expiring under load.
#include <cmath>
#include <cstdint>

namespace sidecache::cache {

// True when now - delta * beta * ln(r) >= expiry, with r uniform in (0, 1].
// delta is the last fill's duration. All times in microseconds.
inline bool xfetch_due(std::uint64_t now_us, std::uint64_t expiry_us, std::uint64_t delta_us, double beta, double r) {
  if (beta <= 0 || r <= 0) return now_us >= expiry_us;
  double gap = -static_cast<double>(delta_us) * beta * std::log(r);  // >= 0
  return static_cast<double>(now_us) + gap >= static_cast<double>(expiry_us);
}

}  // namespace sidecache::cache

#pragma once
// The one source of randomness: a per-thread generator (no lock), seeded
// from std::random_device. Fill tokens, request ids, TTL jitter and the
// XFetch draw all come from here.
#include <cstdint>
#include <string>

namespace sidecache::cache {

std::uint64_t random_u64();
// Uniform in (0, 1]: XFetch takes its logarithm.
double random_unit();
// Uniform in [0, 1): a share of a jitter range.
double random_share();
// 32 hex digits (128 bits): lease tokens.
std::string random_token();

}  // namespace sidecache::cache

#pragma once
// One loaded configuration and the TTL policy derived from it. A request
// keeps the snapshot it started with, so a reload (SIGHUP) never mixes two
// configurations in one request. The arithmetic here is what keeps
// invalidations correct: its invariants are unit-tested
// (tests/unit/cache/ttl_policy_test.cpp).
#include <chrono>
#include <cstdint>
#include <memory>

#include "sidecache/cache/value.hpp"
#include "sidecache/cache/key_layout.hpp"
#include "sidecache/config/config.hpp"

namespace sidecache::cache {

struct Snapshot {
  std::shared_ptr<const config::Config> cfg;
  KeyLayout keys;                      // cfg's key layout
  std::uint64_t max_fill_age_us = 0;   // older fills are answered but not stored
  std::uint64_t tombstone_ttl_ms = 0;  // > max_fill_age: a tombstone outlives every fill it must stop
  std::uint64_t watermark_ttl_ms = 0;  // > the longest life of any value
  std::uint64_t lease_ttl_ms = 0;      // a crashed filler's lease frees the key after this
  std::uint64_t generation = 0;        // 1 at start, +1 per reload
};
using SnapshotPtr = std::shared_ptr<const Snapshot>;

SnapshotPtr make_snapshot(std::shared_ptr<const config::Config> cfg, std::uint64_t generation);

// TTL plus `share` (in [0, 1)) of ttl * jitter, so keys filled together do
// not expire together.
std::chrono::microseconds jittered(std::chrono::microseconds ttl, double jitter, double share);

// How long Redis keeps a value: past its soft expiry for as long as the
// entity may serve it stale.
std::uint64_t redis_ttl_ms(const ValueHeader& h, const config::Entity& e);

}  // namespace sidecache::cache

#include "sidecache/cache/snapshot.hpp"

#include <algorithm>

namespace sidecache::cache {

SnapshotPtr make_snapshot(std::shared_ptr<const config::Config> cfg, std::uint64_t generation) {
  auto snap = std::make_shared<Snapshot>();
  snap->keys = KeyLayout(*cfg);
  // A fill older than this is answered but not stored: tombstones are kept
  // twice as long, so every fill a tombstone must stop meets it.
  auto max_fill = cfg->postgres.statement_timeout + std::chrono::seconds(30);
  snap->max_fill_age_us = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(max_fill).count());
  snap->tombstone_ttl_ms = 2 * snap->max_fill_age_us / 1000;
  // A watermark must outlive every value it can invalidate (TTL, jitter,
  // stale window), with a margin.
  std::uint64_t longest_ms = 0;
  for (const auto& e : cfg->entities) {
    auto life = e.ttl + std::chrono::microseconds(static_cast<std::int64_t>(static_cast<double>(e.ttl.count()) * e.ttl_jitter));
    life = std::max(life, e.negative_ttl) + e.stale_window();
    longest_ms = std::max<std::uint64_t>(longest_ms, static_cast<std::uint64_t>(life.count() / 1000));
  }
  snap->watermark_ttl_ms = longest_ms + 60000;
  snap->lease_ttl_ms = static_cast<std::uint64_t>(cfg->postgres.statement_timeout.count()) + 1000;
  snap->generation = generation;
  snap->cfg = std::move(cfg);
  return snap;
}

std::chrono::microseconds jittered(std::chrono::microseconds ttl, double jitter, double share) {
  if (jitter <= 0) return ttl;
  return ttl + std::chrono::microseconds(static_cast<std::int64_t>(static_cast<double>(ttl.count()) * jitter * share));
}

std::uint64_t redis_ttl_ms(const ValueHeader& h, const config::Entity& e) {
  return (h.soft_expiry_us - h.created_us + static_cast<std::uint64_t>(e.stale_window().count())) / 1000;
}

}  // namespace sidecache::cache

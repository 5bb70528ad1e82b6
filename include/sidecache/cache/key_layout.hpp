#pragma once
// Which keys the cache uses, for the topology in redis.mode: key.hpp's
// layout on one server (standalone, Sentinel), cluster_keys.hpp's on Redis
// Cluster, where every key of one read or one fill shares a hash slot
// (docs/invalidation.md, "Redis Cluster"). Every place that names a key asks
// the snapshot's KeyLayout.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sidecache/config/config.hpp"

namespace sidecache::cache {

class KeyLayout {
 public:
  KeyLayout() = default;
  KeyLayout(std::string prefix, bool cluster) : prefix_(std::move(prefix)), cluster_(cluster) {}
  explicit KeyLayout(const config::Config& cfg)
      : KeyLayout(cfg.key_prefix, cfg.redis.mode == config::RedisMode::cluster) {}

  const std::string& prefix() const { return prefix_; }
  bool cluster() const { return cluster_; }

  // The value key of one entity instance.
  std::string value(const config::Entity& e, const std::vector<std::string>& values) const;
  // The keys one read consults, value key first, then its watermarks (in
  // the value's slot on a cluster).
  std::vector<std::string> read(const config::Entity& e, const std::vector<std::string>& values,
                                const std::string& value_key) const;
  // The watermark of a column tag, as the value under `value_key` names it.
  std::string column_tag(std::string_view tenant, std::string_view tag, std::string_view value_key) const;

  // What an invalidation raises. On a cluster a tenant's marks carry its
  // hash tag, and an all-tenant mark (everywhere() is true) has no slot: the
  // store raises its copy in every slot (copy()).
  std::string tenant_mark(std::string_view tenant) const;
  std::string entity_tenant_mark(std::string_view tenant, std::string_view entity) const;
  std::string entity_mark(std::string_view entity) const;
  std::string tag_mark(std::string_view tenant, std::string_view tag) const;
  bool everywhere(std::string_view mark) const;
  // The copy of an all-tenant mark (with its prefix) in `slot`.
  std::string copy(std::uint16_t slot, std::string_view mark) const;
  // The key an L1 records for a read key: a slot's copy of an all-tenant
  // mark is recorded as the mark (the invalidation's message names it once,
  // not per slot); every other key as it is.
  std::string l1_key(std::string_view key) const;

  // The logical clock of the slot of `key` (one per server off a cluster),
  // raised by every script that orders a fill against an invalidation
  // (docs/invalidation.md, "Ordering without a shared clock").
  std::string clock(std::string_view key) const;
  // The slot's clock, by slot (cluster only).
  std::string slot_clock(std::uint16_t slot) const;

 private:
  std::string prefix_;
  bool cluster_ = false;
};

}  // namespace sidecache::cache

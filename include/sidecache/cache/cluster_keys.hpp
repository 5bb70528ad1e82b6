#pragma once
// The key layout on Redis Cluster (docs/invalidation.md, "Redis Cluster"):
// every key one read or one fill touches is in the value's hash slot, so an
// L2 hit stays one MGET to one node and a fill's check-and-set one script.
//
//   tenant value       <prefix>t:{=<tenant>}:<entity>:<shape>:<p1>...
//   global value       <prefix>{<slot tag>}g:<entity>:<shape>:<p1>...
//   tenant watermarks  <prefix>wm:t:{=<tenant>}, <prefix>wm:t:{=<tenant>}:<entity>,
//                      <prefix>wm:tag:{=<tenant>}:<tag>
//   all-tenant marks   <prefix>{<slot tag>}wm:e:<entity>, <prefix>{<slot tag>}wm:tag:<tag>
//                      (one copy per slot; a read names its own slot's)
//   lease              <prefix>ls:<value key without its prefix> (the same tag)
//
// The slot tag of a global value is tag_of_slot() of the slot its plain form
// (without a tag) hashes to, which spreads global entities over the slots.
// Components are encoded (encode_component escapes '{' and '}'), so a tenant
// or a parameter can never make a hash tag of its own; the tenant's tag
// starts with '=' so that even an empty one is a tag. Standalone and
// Sentinel keep the layout of key.hpp: a rolling upgrade must not change the
// watermark keys that running versions read.
#include <string>
#include <string_view>
#include <vector>

#include "sidecache/config/config.hpp"

namespace sidecache::cache {

std::string cluster_value_key(std::string_view prefix, const config::Entity& entity, const std::vector<std::string>& values);
// The keys one read consults, value key first, as read_keys() (key.hpp).
std::vector<std::string> cluster_read_keys(std::string_view prefix, const config::Entity& entity,
                                           const std::vector<std::string>& values, const std::string& value_key);
// A tenant's marks on a cluster (in the tenant's slot): every entity of it,
// one entity of it, one tag of it. The read keys and the invalidations both
// name them through these.
std::string cluster_tenant_mark(std::string_view prefix, std::string_view tenant);
std::string cluster_entity_tenant_mark(std::string_view prefix, std::string_view tenant, std::string_view entity);
std::string cluster_tag_mark(std::string_view prefix, std::string_view tenant, std::string_view tag);
// The copy of an all-tenant watermark (`mark`, without prefix: "wm:e:user")
// in `slot`.
std::string cluster_slot_copy(std::string_view prefix, std::uint16_t slot, std::string_view mark);

}  // namespace sidecache::cache

#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sidecache/config/config.hpp"

namespace sidecache::cache {

// Percent-encodes every byte that could break the key layout or be read as a
// Redis glob: ':' '%' '*' '?' '[' ']' '{' '}' '\\', space, control bytes and
// DEL. Everything else (including UTF-8) is kept as is.
std::string encode_component(std::string_view raw);

// Builds the Redis key of one entity instance from its normalised values (in
// entity.params order, tenant first for scope: tenant):
//   tenant: <prefix>t:<tenant>:<entity>:<shape>:<p1>:<p2>...
//   global: <prefix>g:<entity>:<shape>:<p1>:<p2>...
// Every variable component is encoded, and the number of components is fixed
// per entity, so two different (tenant, entity, params) never share a key.
std::string build_key(std::string_view prefix, const config::Entity& entity, const std::vector<std::string>& values);

// The reverse: the values build_key() made `key` from, or nullopt when
// `key` is not a key of `entity` (another entity or shape, a lease, a
// watermark, a bad escape). parse_key(p, e, build_key(p, e, v)) == v.
std::optional<std::vector<std::string>> parse_key(std::string_view prefix, const config::Entity& entity,
                                                  std::string_view key);

}  // namespace sidecache::cache

namespace sidecache::cache {

// Watermark keys: each holds the Redis time (us) of the newest invalidation
// of its scope. A value is valid only if its fill began after all of them.
//   <prefix>wm:t:<tenant>            every entity of one tenant
//   <prefix>wm:t:<tenant>:<entity>   one entity of one tenant
//   <prefix>wm:e:<entity>            one entity, every tenant (or a global entity)
std::string tenant_watermark(std::string_view prefix, std::string_view tenant);
std::string entity_tenant_watermark(std::string_view prefix, std::string_view tenant, std::string_view entity);
std::string entity_watermark(std::string_view prefix, std::string_view entity);
// One tag's watermark (docs/invalidation.md, "Tags"):
//   <prefix>wm:tag:<tenant>:<tag>    a tag of one tenant
//   <prefix>wm:tag:<tag>             a tag of global entities (tenant "")
// Both components are encoded, so the two forms never meet.
std::string tag_watermark(std::string_view prefix, std::string_view tenant, std::string_view tag);

// The keys one read consults, in one MGET: the value key first, then every
// watermark that covers it (three for a tenant-scoped entity, one for a
// global entity), then the watermarks of its param tags. (Column tags are
// known once filled: they travel with the value, cache/tags.hpp.)
std::vector<std::string> read_keys(std::string_view prefix, const config::Entity& entity,
                                   const std::vector<std::string>& values, std::string value_key);

}  // namespace sidecache::cache

namespace sidecache::cache {

// The lease of one value key: held by the one process that fills it.
//   <prefix>ls:<value key without its prefix>
std::string lease_key(std::string_view prefix, std::string_view value_key);

}  // namespace sidecache::cache

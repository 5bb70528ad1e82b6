#pragma once
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

}  // namespace sidecache::cache

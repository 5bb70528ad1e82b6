#pragma once
// Turns one trigger notification into the invalidations it implies. Pure:
// no I/O, unit-tested.
#include <string>
#include <string_view>
#include <vector>

#include "sidecache/config/config.hpp"
#include "sidecache/cache/request.hpp"

namespace sidecache::cache {

// For each entity with an invalidate_on rule on the notified table, and for
// each row image (old and new: an UPDATE that moves a row between keys
// invalidates both):
//   - rule maps every non-tenant param -> that one key;
//   - rule maps no (or only some) params -> the entity for the row's tenant;
//   - global entity without full mapping -> the whole entity;
//   - TRUNCATE, or a tenant column that is null or not a valid tenant ->
//     the entity for every tenant.
// Duplicates are removed. A payload that is not a notification of ours
// yields nothing and sets `error`.
// Every key of an entity: all tenants, or the whole of a global entity.
Invalidation whole_entity(const config::Entity& e);

std::vector<Invalidation> invalidations_for(const config::Config& cfg, std::string_view payload, std::string& error);

}  // namespace sidecache::cache

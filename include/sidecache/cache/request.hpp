#pragma once
// What the cache is asked to do, whoever asked (the HTTP API, a PostgreSQL
// notification, a replay after a Redis outage): read one entity instance, or
// invalidate a scope. Entity pointers point into a configuration; the
// snapshot that holds that configuration travels with the request, so a
// request that outlives a reload (a queued invalidation) never points into
// freed memory.
#include <memory>
#include <string>
#include <vector>

#include "sidecache/cache/snapshot.hpp"
#include "sidecache/config/config.hpp"

namespace sidecache::cache {

struct BatchGroup;

// A validated entity request: which entity, its normalised params, its key.
struct EntityRequest {
  const config::Entity* entity = nullptr;  // into snapshot->cfg
  std::vector<std::string> values;         // entity->params order
  std::string key;
  SnapshotPtr snapshot;  // set by whoever hands the request to the cache
  // A batch read's misses that one query of the entity's batch form may
  // fill (cache/batch_group.hpp); null for every other read.
  std::shared_ptr<BatchGroup> batch_group;
};

// A validated invalidation: what to invalidate, and how it was asked for.
struct Invalidation {
  enum class Scope {
    key,                 // one entity instance (DELETE, or POST with params)
    entity,              // every key of one entity for one tenant, or of a global entity
    tenant,              // every key of one tenant
    entity_all_tenants,  // every key of a tenant-scoped entity, all tenants
    tag,                 // every value that carries a tag: of one tenant, or of global entities
  };
  Scope scope = Scope::key;
  const config::Entity* entity = nullptr;  // null for Scope::tenant; into snapshot->cfg
  std::string tenant;                      // normalised; empty for global / all tenants
  std::string tag;                         // Scope::tag: the tag
  EntityRequest request;                   // Scope::key: the key
  SnapshotPtr snapshot;                    // set by whoever hands it to the cache

  // Attaches the snapshot whose configuration the entity pointers point into.
  void attach(SnapshotPtr s) {
    request.snapshot = s;
    snapshot = std::move(s);
  }
};

const char* to_string(Invalidation::Scope s);

}  // namespace sidecache::cache

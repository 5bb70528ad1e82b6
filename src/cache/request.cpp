#include "sidecache/cache/request.hpp"

namespace sidecache::cache {

const char* to_string(Invalidation::Scope s) {
  switch (s) {
    case Invalidation::Scope::key: return "key";
    case Invalidation::Scope::entity: return "entity";
    case Invalidation::Scope::tenant: return "tenant";
    case Invalidation::Scope::entity_all_tenants: return "entity_all_tenants";
    case Invalidation::Scope::tag: return "tag";
  }
  return "?";
}

}  // namespace sidecache::cache

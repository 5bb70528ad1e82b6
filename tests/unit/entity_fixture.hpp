#pragma once
// Entities built in memory for unit tests of pure logic.
#include "sidecache/config/config.hpp"

namespace sidecache::test {

inline config::Entity make_entity(std::string name, config::Scope scope,
                                  std::vector<std::pair<std::string, config::ParamType>> params,
                                  config::ParamType tenant_type = config::ParamType::uuid) {
  config::Entity e;
  e.name = std::move(name);
  e.scope = scope;
  if (scope == config::Scope::tenant) e.params.push_back({"org_id", tenant_type, 256, true});
  for (auto& [n, t] : params) e.params.push_back({n, t, 256, false});
  e.shape_hash = "0123abcd";
  e.ttl = std::chrono::minutes(5);
  return e;
}

}  // namespace sidecache::test

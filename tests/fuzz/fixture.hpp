#pragma once
// A fixed configuration for the fuzz targets, built in memory.
#include "sidecache/config/config.hpp"

namespace sidecache::fuzz {

inline const config::Config& fixture() {
  static const config::Config cfg = [] {
    config::Config c;
    c.key_prefix = "sc:";
    auto add = [&](std::string name, config::Scope scope, std::vector<config::ParamSpec> params) {
      config::Entity e;
      e.name = std::move(name);
      e.scope = scope;
      if (scope == config::Scope::tenant) e.params.push_back({"org_id", config::ParamType::uuid, 256, true});
      for (auto& p : params) e.params.push_back(p);
      e.shape_hash = "0123abcd";
      e.ttl = std::chrono::minutes(1);
      c.entities.push_back(e);
    };
    add("user", config::Scope::tenant, {{"user_id", config::ParamType::uuid, 256, false}});
    add("search", config::Scope::tenant, {{"q", config::ParamType::string, 64, false}, {"page", config::ParamType::integer, 256, false}});
    add("flags", config::Scope::global, {{"name", config::ParamType::slug, 256, false}});
    c.entities[0].invalidate_on.push_back({"users", "org_id", {{"user_id", "id"}}});
    c.auth.token = "0123456789abcdef0123";
    return c;
  }();
  return cfg;
}

}  // namespace sidecache::fuzz

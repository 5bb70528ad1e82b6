#pragma once
// The `batch:` block of an entity file. Private to the config module.
#include <yaml-cpp/yaml.h>

#include "sidecache/config/config.hpp"
#include "yaml_file.hpp"

namespace sidecache::config::detail {

// Checks `node` against `e` (params, result shape and tenant already loaded)
// and sets e.batch, or reports the problems to `ctx`.
void load_batch(const YAML::Node& node, const Config& cfg, Entity& e, FileCtx& ctx);

}  // namespace sidecache::config::detail

#pragma once
// The `tags:` of an entity file and of its invalidate_on rules. Private to
// the config module.
#include <yaml-cpp/yaml.h>

#include <vector>

#include "sidecache/config/config.hpp"
#include "sidecache/config/tag_template.hpp"
#include "yaml_file.hpp"

namespace sidecache::config::detail {

// Each tag is one more key on every read of the entity: a bound.
inline constexpr std::size_t kMaxTags = 8;

// Parses a list of tag templates (`node`) into `out`, or reports the
// problems to `ctx`. `e`: the entity (params and result shape loaded).
void load_tags(const YAML::Node& node, const Entity& e, TagSource source, std::vector<TagTemplate>& out, FileCtx& ctx);

}  // namespace sidecache::config::detail

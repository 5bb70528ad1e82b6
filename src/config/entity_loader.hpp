#pragma once
// One entity file: its params, SQL (checked against its params and the
// tenant rule), TTLs, stale windows and invalidate_on rules. Private to the
// config module.
#include <map>
#include <string>
#include <vector>

#include "sidecache/config/config.hpp"

namespace sidecache::config::detail {

// Loads `path`; appends the entity to `out`, or its problems to `problems`.
// `names` maps entity names already taken to where (file:line).
// Warnings (it loads, but probably not as meant) go to `warnings`.
void load_entity(const std::string& path, const Config& cfg, std::vector<Problem>& problems, std::vector<Entity>& out,
                 std::map<std::string, std::string>& names, std::vector<Problem>& warnings);

}  // namespace sidecache::config::detail

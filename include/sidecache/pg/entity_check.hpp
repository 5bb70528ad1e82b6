#pragma once
// `sidecache check --connect`: every entity's SQL against the real database.
// Each statement must prepare, and a tenant-scoped entity's tenant parameter
// must filter rows: PostgreSQL's own planner is asked (EXPLAIN VERBOSE of the
// generic plan), and the parameter must appear in a condition (a WHERE
// filter, an index, join or hash condition), not only in the output.
#include <string>
#include <vector>

#include "sidecache/config/config.hpp"

namespace sidecache::pg {

// Whether the EXPLAIN (VERBOSE) text uses $n in a condition (Filter, Join
// Filter, One-Time Filter, Index Cond, Hash Cond, Merge Cond, Recheck Cond).
// Pure; unit-tested.
bool plan_filters_by(const std::string& plan, std::size_t n);

// One line per problem ("file: entity 'x': ..."); empty when every entity
// prepares and filters by its tenant. A connection failure is one problem.
std::vector<std::string> check_entities(const config::Config& cfg);

}  // namespace sidecache::pg

#pragma once
#include <string>

#include "sidecache/config/config.hpp"

namespace sidecache::pg {

// The SQL that installs (or, with drop, removes) the invalidation triggers
// for every table named in some entity's invalidate_on. Running it twice is
// harmless. Each trigger sends, on the configured channel, a JSON payload:
//   {"table":..,"schema":..,"op":"INSERT|UPDATE|DELETE|TRUNCATE","old":{cols}|null,"new":{cols}|null}
// holding only the columns the rules map (and the tenant columns).
std::string trigger_sql(const config::Config& cfg, bool drop = false);

}  // namespace sidecache::pg

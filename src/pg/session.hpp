#pragma once
// A connection of the pg module's own (the WAL clock, a replica monitor):
// opened one at a time (see connect_mutex in pool.hpp) and named in
// pg_stat_activity.
#include <memory>
#include <pqxx/pqxx>
#include <string>

#include "sidecache/pg/pool.hpp"

namespace sidecache::pg {

inline std::unique_ptr<pqxx::connection> open_session(const std::string& conninfo, const std::string& application_name) {
  std::lock_guard one_at_a_time(connect_mutex());
  auto conn = std::make_unique<pqxx::connection>(conninfo);
  pqxx::nontransaction tx(*conn);
  tx.exec("SET application_name = '" + application_name + "'");
  return conn;
}

}  // namespace sidecache::pg

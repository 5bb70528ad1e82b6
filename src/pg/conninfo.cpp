// Connection strings and the server a session is on.
#include <algorithm>

#include "sidecache/pg/pool.hpp"

namespace sidecache::pg {

// Adds connect_timeout to the connection string unless the user set one, so
// that an unreachable host costs a bounded time.
std::string conninfo_of(const config::PostgresConfig& cfg) { return conninfo_of(cfg.dsn, cfg); }

std::string conninfo_of(const std::string& dsn, const config::PostgresConfig& cfg) {
  const auto t = cfg.connect_timeout;
  if (dsn.find("connect_timeout") != std::string::npos) return dsn;
  long secs = std::max<long>(1, static_cast<long>((t.count() + 999) / 1000));
  if (dsn.rfind("postgres://", 0) == 0 || dsn.rfind("postgresql://", 0) == 0)
    return dsn + (dsn.find('?') == std::string::npos ? "?" : "&") + "connect_timeout=" + std::to_string(secs);
  return dsn + " connect_timeout=" + std::to_string(secs);
}

const char* const kServerIdentitySql =
    "SELECT coalesce(inet_server_addr()::text, 'local') || ':' || coalesce(inet_server_port(), 0) || '@' || "
    "pg_postmaster_start_time()";

}  // namespace sidecache::pg

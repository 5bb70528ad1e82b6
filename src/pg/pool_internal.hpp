#pragma once
// What the pool's files share: how PostgreSQL's answers are classified, and
// how a statement is prepared on a connection.
#include <chrono>
#include <cstdint>
#include <string>

#include "async_conn.hpp"
#include "sidecache/pg/pool.hpp"

namespace sidecache::pg {

// Steady milliseconds: the pool's down-until and log-once times.
inline std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// 42P05 duplicate_prepared_statement, 26000 invalid_sql_statement_name:
// named statements meeting a pooler that moves sessions between server
// connections.
inline bool pooler_clash(const std::string& sqlstate) { return sqlstate == "42P05" || sqlstate == "26000"; }

inline bool connection_class(const std::string& sqlstate) {
  // 08: connection exception; 57P01-57P03: admin shutdown, crash shutdown,
  // cannot connect now; 53300: too many connections.
  return sqlstate.rfind("08", 0) == 0 || sqlstate.rfind("57P", 0) == 0 || sqlstate == "53300";
}

// What an entity's statement that PostgreSQL refused to prepare says, as one line.
inline std::string not_prepared(const Outcome& o) {
  return "its SQL does not prepare [" + o.sqlstate + "]: " + one_line_sql_error(o.message);
}

// Prepares `st` on `conn`: as its own name, or checked as
// the unnamed statement, which the next statement replaces (nothing stays
// behind on a pooled server connection).
inline net::awaitable<Outcome> prepare_on(AsyncConn& conn, const Statement& st, bool named,
                                          std::chrono::steady_clock::time_point deadline) {
  const char* name = named ? st.name.c_str() : "";
  co_return co_await conn.run([&](PGconn* c) { return PQsendPrepare(c, name, st.sql.c_str(), 0, nullptr); },
                                   deadline);
}

}  // namespace sidecache::pg

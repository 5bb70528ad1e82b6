#pragma once
// One connection of the pool: its libpq connection, the executor that
// drives it, and what that connection knows (statements it prepared, the
// server it is on). Touched on its executor only, but for `idle`, which the
// pool reads and writes under its mutex.
#include <boost/asio/steady_timer.hpp>

#include <string>
#include <unordered_set>

#include "async_conn.hpp"
#include "sidecache/pg/pool.hpp"

namespace sidecache::pg {

struct Pool::Slot {
  Slot(std::size_t i, net::any_io_executor e)
      : id(i), ex(e), context(&net::query(e, net::execution::context)), conn(e), bell(e) {}
  std::size_t id;
  net::any_io_executor ex;
  net::execution_context* context;  // the loop it runs on
  AsyncConn conn;
  std::unordered_set<std::string> prepared;  // statement names this connection knows
  std::string server;                        // a replica session's server_identity
  net::steady_timer bell;                    // an idle connection waits here for a job
  bool idle = false;                         // waiting for a job (under Pool::mu_)
};

}  // namespace sidecache::pg

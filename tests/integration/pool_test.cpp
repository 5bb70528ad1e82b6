// The PostgreSQL pool on its own (pg::Pool), against the test PostgreSQL:
// connections driven by the callers' own loops, and a server that stops
// answering.
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <csignal>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "harness.hpp"
#include "sidecache/pg/pool.hpp"

using namespace sidecache::it;
namespace net = boost::asio;
namespace pg = sidecache::pg;

namespace {

// Two loops on threads of their own, as two workers.
struct TwoWorkers {
  net::io_context io[2];
  std::optional<net::executor_work_guard<net::io_context::executor_type>> guard[2];
  std::thread thread[2];
  TwoWorkers() {
    for (int i = 0; i < 2; ++i) {
      guard[i].emplace(io[i].get_executor());
      thread[i] = std::thread([this, i] { io[i].run(); });
    }
  }
  ~TwoWorkers() {
    for (int i = 0; i < 2; ++i) {
      guard[i].reset();
      io[i].stop();
      thread[i].join();
    }
  }
};

sidecache::config::PostgresConfig pool_config(std::size_t size) {
  sidecache::config::PostgresConfig c;
  c.dsn = Services::get().dsn();
  c.pool_size = size;
  c.statement_timeout = std::chrono::milliseconds(300);
  return c;
}

pg::Statement backend_pid() {
  pg::Statement st;
  st.name = "pool_test_pid";
  st.sql = "SELECT pg_backend_pid()::text";
  st.single_row = true;
  st.entity = "pool_test";
  return st;
}

// Runs `st` from a coroutine on `ex` (as a worker's request would) and waits.
pg::FillResult run_on(pg::Pool& pool, const net::any_io_executor& ex, const pg::Statement& st) {
  auto f = net::co_spawn(
      ex, [&]() -> net::awaitable<pg::FillResult> { co_return co_await pool.async_run(st, {}, net::use_awaitable); },
      net::use_future);
  return f.get();
}

}  // namespace

TEST_CASE("pool: a fill is run by an idle connection on the caller's own worker, so its query costs no thread hand-off") {
  TwoWorkers w;
  pg::Pool pool(pool_config(2));
  // Connection 0 runs on worker 1, connection 1 on worker 0.
  pool.start({backend_pid()}, {w.io[1].get_executor(), w.io[0].get_executor()});
  // Both connections open, warmed and waiting.
  REQUIRE(eventually([&] { return pool.stats().idle == 2; }));
  std::set<std::string> from[2];
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 2; ++i) {
      pg::FillResult r = run_on(pool, w.io[i].get_executor(), backend_pid());
      REQUIRE(r.status == pg::FillResult::Status::ok);
      from[i].insert(r.json);
    }
  }
  // Each worker's fills ran on its own connection, one backend each.
  CHECK(from[0].size() == 1);
  CHECK(from[1].size() == 1);
  CHECK(*from[0].begin() != *from[1].begin());
  pool.stop();
}

TEST_CASE("pool: a server that stops answering costs a fill statement_timeout and a grace, not forever, and the next fill runs on a new connection") {
  pg::Pool pool(pool_config(1));
  pool.start({backend_pid()});
  net::io_context io;
  auto guard = net::make_work_guard(io);
  std::thread t([&] { io.run(); });
  pg::FillResult first = run_on(pool, io.get_executor(), backend_pid());
  REQUIRE(first.status == pg::FillResult::Status::ok);
  // The connection's backend stops: no statement_timeout of its own fires.
  const int backend = std::stoi(first.json);
  REQUIRE(::kill(backend, SIGSTOP) == 0);
  // Continued on every way out of this test: a backend left stopped would
  // keep PostgreSQL from ever shutting down.
  struct Resume {
    int pid;
    ~Resume() { ::kill(pid, SIGCONT); }
  } resume{backend};
  pg::FillResult stuck = run_on(pool, io.get_executor(), backend_pid());
  ::kill(backend, SIGCONT);
  INFO(stuck.message);
  CHECK(stuck.status == pg::FillResult::Status::timeout);
  pg::FillResult next = run_on(pool, io.get_executor(), backend_pid());
  REQUIRE(next.status == pg::FillResult::Status::ok);
  CHECK(next.json != first.json);
  pool.stop();
  guard.reset();
  t.join();
}

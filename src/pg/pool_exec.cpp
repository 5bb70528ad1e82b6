// Running one job on a connection of the pool: reconnecting when needed,
// checking a replica's replay position, preparing and executing the
// statement, and reading PostgreSQL's answer into a FillResult.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "pool_internal.hpp"
#include "pool_slot.hpp"
#include "sidecache/pg/lsn.hpp"

namespace sidecache::pg {
namespace {

using Status = FillResult::Status;
using Clock = std::chrono::steady_clock;

// A query's answer may come later than statement_timeout (the server
// cancels it then) by this much before the connection is given up: a
// server that stopped answering at all.
constexpr auto kAnswerGrace = std::chrono::seconds(2);

std::string value_at(const PGresult* r, int row, int col) {
  return std::string(PQgetvalue(r, row, col), static_cast<std::size_t>(PQgetlength(r, row, col)));
}

}  // namespace

net::awaitable<FillResult> Pool::execute(Slot& slot, const Job& job) {
  FillResult result;
  auto started = Clock::now();
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (stopping_) {
      result = refused("shutting down");
      break;
    }
    bool fresh = false;
    if (!slot.conn.open()) {
      if (known_down() || !co_await connect(slot)) {
        result = {Status::unavailable, {}, {}, "PostgreSQL is unreachable"};
        break;
      }
      fresh = true;
    }
    bool retry = false;
    result = co_await execute_once(slot, job, fresh, retry);
    if (!retry) break;
  }
  result.took = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started);
  co_return result;
}

net::awaitable<FillResult> Pool::execute_once(Slot& slot, const Job& job, bool fresh, bool& retry) {
  const Statement& st = job.statement;
  const auto started = Clock::now();
  const auto deadline = started + cfg_.statement_timeout + kAnswerGrace;
  bool waited = false;  // a replica was polled for its replay position
  if (st.ping) {
    Outcome o = co_await slot.conn.run([](PGconn* c) { return PQsendQuery(c, "SELECT 1"); }, deadline);
    if (o.kind != Outcome::Kind::ok) co_return failure(slot, job, o, fresh, retry);
    co_return FillResult{Status::ok, "1", {}, {}};
  }
  if (st.prepare_only) {
    if (!named() || !slot.prepared.count(st.name)) {
      Outcome o = co_await prepare_on(slot.conn, st, named(), deadline);
      if (o.kind != Outcome::Kind::ok) co_return failure(slot, job, o, fresh, retry);
      if (named()) slot.prepared.insert(st.name);
    }
    forget_failure(st.entity);
    co_return FillResult{Status::ok, {}, {}, {}};
  }
  if (st.min_lsn) {
    Outcome failed;
    auto ok = co_await caught_up(slot, st, started, waited, failed);
    if (!ok) co_return failure(slot, job, failed, fresh, retry);
    if (!*ok) {
      FillResult behind{Status::behind, {}, {},
                        "the replica had not replayed " + format_lsn(st.min_lsn) + " within postgres.replica_wait"};
      behind.waited = waited;
      co_return behind;
    }
  }
  const bool use_name = named();
  if (use_name && !slot.prepared.count(st.name)) {
    Outcome o = co_await prepare_on(slot.conn, st, true, deadline);
    if (o.kind != Outcome::Kind::ok) co_return failure(slot, job, o, fresh, retry);
    slot.prepared.insert(st.name);
  }
  std::vector<const char*> values;
  values.reserve(job.args.size());
  for (const auto& a : job.args) values.push_back(a.c_str());
  const int n = static_cast<int>(values.size());
  Outcome o = co_await slot.conn.run(
      [&](PGconn* c) {
        // Unnamed: Parse, Bind and Execute in one round trip, nothing left
        // on the server connection.
        return use_name ? PQsendQueryPrepared(c, st.name.c_str(), n, values.data(), nullptr, nullptr, 0)
                        : PQsendQueryParams(c, st.sql.c_str(), n, nullptr, values.data(), nullptr, nullptr, 0);
      },
      deadline);
  if (o.kind != Outcome::Kind::ok) {
    FillResult f = failure(slot, job, o, fresh, retry);
    f.waited = waited;
    co_return f;
  }
  queries_.fetch_add(1, std::memory_order_relaxed);
  forget_failure(st.entity);  // its SQL runs now (fixed and reloaded)
  const PGresult* r = o.result.get();
  const int rows = r ? PQntuples(r) : 0;
  FillResult result;
  if (st.batch) {
    result = {Status::ok, {}, {}, {}};
    result.rows.reserve(static_cast<std::size_t>(rows));
    for (int i = 0; i < rows; ++i) result.rows.emplace_back(value_at(r, i, 0), value_at(r, i, 1));
  } else if (st.single_row && rows == 0) {
    result = {Status::not_found, {}, {}, {}};
  } else if (st.single_row && rows > 1) {
    result = {Status::error, {}, {}, "the entity is 'result: row' but its query returned more than one row"};
  } else if (rows == 0 || PQgetisnull(r, 0, 0)) {
    result = {Status::error, {}, {}, "the query produced no JSON"};
  } else {
    result = {Status::ok, value_at(r, 0, 0), {}, {}};
  }
  result.waited = waited;
  co_return result;
}

FillResult Pool::failure(Slot& slot, const Job& job, Outcome& o, bool fresh, bool& retry) {
  const Statement& st = job.statement;
  retry = false;
  if (o.kind == Outcome::Kind::timed_out) {
    // The server did not answer within statement_timeout and then some:
    // the connection is closed (a new one is opened for the next job).
    return {Status::timeout, {}, {}, "PostgreSQL did not answer within statement_timeout"};
  }
  if (o.kind == Outcome::Kind::broken) {
    slot.conn.close();
    // A connection that broke between two fills (server restart) is
    // retried once on a new one; a fresh one that breaks is an outage.
    if (fresh) {
      mark_down();
      return {Status::unavailable, {}, {}, "PostgreSQL connection lost"};
    }
    if (stopping_) return refused("shutting down");
    // Once, not per connection as each is used again.
    auto now = now_ms();
    auto last = closed_logged_ms_.load();
    if (now - last > 60000 && closed_logged_ms_.compare_exchange_strong(last, now))
      spdlog::warn("postgres: the server closed this process's connections (a restart?); each reconnects when it is "
                   "next used, and the fill is retried on the new one");
    retry = true;
    return {Status::unavailable, {}, {}, "PostgreSQL connection lost"};
  }
  const std::string& state = o.sqlstate;
  if (pooler_clash(state) && named()) {
    // A pooler in transaction mode gave this fill a server connection that
    // another client prepared on, or that never saw our PREPARE.
    pooler_detected(st, state);
    slot.prepared.clear();
    retry = true;
    return {Status::unavailable, {}, {}, "retried unnamed"};
  }
  if (state == "57014") return {Status::timeout, {}, {}, "the query ran past statement_timeout"};
  if (connection_class(state)) {
    slot.conn.close();
    if (fresh) mark_down();
    else retry = true;
    return {Status::unavailable, {}, {}, "PostgreSQL is unavailable (" + state + ")"};
  }
  if (st.prepare_only) {
    FillResult r{Status::error, {}, {}, not_prepared(o)};
    slot.prepared.erase(st.name);
    entity_failed(st, r.message);
    return r;
  }
  if (role_ == Role::replica && state.rfind("40", 0) == 0) {
    // 40001/40P01: a standby cancels queries that conflict with replay
    // ("canceling statement due to conflict with recovery").
    FillResult r{Status::unavailable, {}, {}, "the replica cancelled the query (recovery conflict)"};
    r.conflict = true;
    return r;
  }
  FillResult r{Status::error, {}, {}, "query failed [" + state + "]: " + one_line_sql_error(o.message)};
  spdlog::error("postgres: entity '{}' ({}): {}", st.entity, st.file, r.message);
  // The SQL itself is wrong (syntax, a missing column): listed for /readyz
  // (the line above already said it), and prepared again next time, so a
  // fixed and reloaded entity recovers.
  if (state.rfind("42", 0) == 0) {
    slot.prepared.erase(st.name);
    entity_failed(st, r.message, /*log=*/false);
  }
  return r;
}

net::awaitable<std::optional<bool>> Pool::caught_up(Slot& slot, const Statement& st, Clock::time_point started,
                                                    bool& waited, Outcome& failed) {
  // The monitor saw this very server past the position before the fill was
  // submitted: replay only moves forward, so the query's snapshot, taken
  // now, includes it.
  if (st.known_server && !slot.server.empty() && *st.known_server == slot.server && st.known_replayed >= st.min_lsn)
    co_return true;
  // On this session, before the query: the query's snapshot, taken after
  // this answer, includes everything replayed up to it.
  const std::string sql = "SELECT coalesce(pg_last_wal_replay_lsn() >= '" + format_lsn(st.min_lsn) + "'::pg_lsn, false)";
  const auto deadline = started + st.wait;
  net::steady_timer pause(slot.ex);
  for (;;) {
    Outcome o = co_await slot.conn.run([&](PGconn* c) { return PQsendQuery(c, sql.c_str()); },
                                       Clock::now() + cfg_.statement_timeout + kAnswerGrace);
    if (o.kind != Outcome::Kind::ok) {
      failed = std::move(o);
      co_return std::nullopt;
    }
    if (PQntuples(o.result.get()) == 1 && std::string_view(PQgetvalue(o.result.get(), 0, 0)) == "t") co_return true;
    if (Clock::now() >= deadline) co_return false;
    waited = true;
    pause.expires_after(std::chrono::milliseconds(1));
    co_await pause.async_wait(net::as_tuple(net::use_awaitable));
  }
}

}  // namespace sidecache::pg

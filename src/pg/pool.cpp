#include "sidecache/pg/pool.hpp"

#include <spdlog/spdlog.h>

#include <pqxx/pqxx>
#include <string_view>

#include "sidecache/pg/lsn.hpp"
#include <unordered_set>

namespace sidecache::pg {
namespace {

using Status = FillResult::Status;
using Clock = std::chrono::steady_clock;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
}

// While PostgreSQL refuses connections, fills fail at once for this long
// before the next connect attempt.
constexpr std::int64_t kRetryAfterDownMs = 500;

// 42P05 duplicate_prepared_statement, 26000 invalid_sql_statement_name:
// named statements meeting a pooler that moves sessions between server
// connections.
bool pooler_clash(const std::string& sqlstate) { return sqlstate == "42P05" || sqlstate == "26000"; }

void prepare_on(pqxx::connection& conn, const Statement& st, bool named) {
  if (named) {
    conn.prepare(st.name, st.sql);
    conn.prepare_now(st.name);  // libpqxx would prepare on first use
  } else {
    // Checked as the unnamed statement, which the next statement replaces:
    // nothing stays behind on a pooled server connection.
    conn.prepare(st.sql);
    conn.prepare_now("");
  }
}

bool connection_class(const std::string& sqlstate) {
  // 08: connection exception; 57P01-57P03: admin shutdown, crash shutdown,
  // cannot connect now; 53300: too many connections.
  return sqlstate.rfind("08", 0) == 0 || sqlstate.rfind("57P", 0) == 0 || sqlstate == "53300";
}

// What an entity's statement that PostgreSQL refused to prepare says, as one line.
std::string not_prepared(const pqxx::sql_error& e) {
  return "its SQL does not prepare [" + e.sqlstate() + "]: " + one_line_sql_error(e.what());
}

}  // namespace

std::mutex& connect_mutex() {
  static std::mutex m;
  return m;
}

Pool::Pool(config::PostgresConfig cfg, Role role, config::TenantLimits tenants)
    : cfg_(std::move(cfg)),
      role_(role),
      conninfo_(conninfo_of(cfg_)),
      queue_(tenants.fair_queue, tenants.max_queued_fills),
      unnamed_(!cfg_.prepared) {}

Pool::~Pool() { stop(); }

void Pool::start(std::vector<Statement> warm) {
  auto shared = std::make_shared<const std::vector<Statement>>(std::move(warm));
  for (std::size_t i = 0; i < cfg_.pool_size; ++i) threads_.emplace_back([this, i, shared] { run(i, shared); });
  reaper_ = std::thread([this] { reap(); });
}

void Pool::reap() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    reaper_cv_.wait_for(lock, std::chrono::milliseconds(20));
    auto now = Clock::now();
    std::vector<Job> expired = queue_.take_if([now](const Job& j) { return j.deadline <= now; });
    if (expired.empty()) continue;
    lock.unlock();
    rejected_.fetch_add(expired.size(), std::memory_order_relaxed);
    for (auto& j : expired) j.done(refused("waited longer than statement_timeout for a PostgreSQL connection"));
    lock.lock();
  }
}

FillResult Pool::refused(std::string why, bool tenant_full) {
  FillResult r{Status::unavailable, {}, {}, std::move(why)};
  r.rejected = true;
  r.tenant_full = tenant_full;
  return r;
}

void Pool::stop() {
  std::vector<Job> left;
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    left = queue_.take_all();
  }
  cv_.notify_all();
  reaper_cv_.notify_all();
  for (auto& j : left) j.done(refused("shutting down"));
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  if (reaper_.joinable()) reaper_.join();
}

bool Pool::known_down() const { return now_ms() < down_until_ms_.load(std::memory_order_relaxed); }

void Pool::mark_down() {
  down_until_ms_.store(now_ms() + kRetryAfterDownMs, std::memory_order_relaxed);
  if (up_.exchange(false)) spdlog::warn("postgres: connection lost; fills fail fast until it is back");
}

void Pool::mark_up() {
  down_until_ms_.store(0, std::memory_order_relaxed);
  if (!up_.exchange(true)) spdlog::info("postgres: connected");
}

void Pool::submit(Statement statement, std::vector<std::string> args, std::function<void(FillResult)> done) {
  {
    std::unique_lock lock(mu_);
    if (stopping_) {
      lock.unlock();
      done(refused("shutting down"));
      return;
    }
    // Known down and nobody holds a live connection: answer now rather than
    // queue behind connect attempts that are bound to fail.
    if (known_down() && in_use_.load() == 0) {
      lock.unlock();
      rejected_.fetch_add(1, std::memory_order_relaxed);
      done(refused("PostgreSQL is unreachable"));
      return;
    }
    if (queue_.size() >= cfg_.queue_limit + (cfg_.pool_size - std::min(cfg_.pool_size, in_use_.load()))) {
      lock.unlock();
      rejected_.fetch_add(1, std::memory_order_relaxed);
      done(refused("the fill queue is full"));
      return;
    }
    std::string tenant = statement.tenant;
    std::size_t cap = statement.tenant_cap;
    Job job{std::move(statement), std::move(args), std::move(done), Clock::now() + cfg_.statement_timeout};
    if (queue_.push(tenant, cap, std::move(job)) == FairQueue<Job>::Push::tenant_full) {
      lock.unlock();
      rejected_.fetch_add(1, std::memory_order_relaxed);
      job.done(refused("this tenant has tenants.max_queued_fills fills waiting for PostgreSQL", true));
      return;
    }
  }
  cv_.notify_one();
}

void Pool::run(std::size_t id, std::shared_ptr<const std::vector<Statement>> warm) {
  std::unique_ptr<pqxx::connection> conn;
  std::unordered_set<std::string> prepared;  // statement names this connection knows
  std::string server;  // a replica session's server_identity
  auto connect = [&]() -> bool {
    prepared.clear();
    server.clear();
    try {
      {
        std::lock_guard one_at_a_time(connect_mutex());
        // Another thread may have found PostgreSQL down while this one
        // waited: no attempt that is bound to fail.
        if (known_down()) return false;
        conn = std::make_unique<pqxx::connection>(conninfo_);
        pqxx::nontransaction tx(*conn);
        tx.exec("SET statement_timeout = " + std::to_string(cfg_.statement_timeout.count()));
        tx.exec("SET application_name = 'sidecache'");
        if (role_ == Role::replica) server = tx.exec(kServerIdentitySql)[0][0].c_str();
      }
      mark_up();
      return true;
    } catch (const std::exception& e) {
      conn.reset();
      if (up_.load() || down_until_ms_.load() == 0)
        spdlog::warn("postgres: connection {} failed: {}", id, config::mask_secrets(e.what()));
      mark_down();
      return false;
    }
  };

  // Warm: connect now and prepare every entity's statement. A statement
  // that does not prepare is left to fail on first use, with its error.
  if (connect()) {
    std::size_t ready = 0;
    for (const Statement& st : *warm) {
      if (st.ping || st.name.empty() || prepared.count(st.name)) continue;
      try {
        prepare_on(*conn, st, named());
        if (named()) prepared.insert(st.name);
        ++ready;
      } catch (const pqxx::broken_connection&) {
        conn.reset();
        prepared.clear();
        break;
      } catch (const pqxx::sql_error& e) {
        if (connection_class(e.sqlstate())) break;
        if (pooler_clash(e.sqlstate())) {
          pooler_detected(st, e.sqlstate());
          prepared.clear();
          continue;
        }
        entity_failed(st, not_prepared(e));
      } catch (const std::exception& e) {
        spdlog::debug("postgres: connection {} could not prepare {}: {}", id, st.name, e.what());
      }
    }
    spdlog::debug("postgres: connection {} open, {} statements prepared", id, ready);
  }
  warm.reset();

  for (;;) {
    Job job;
    std::string tenant;
    {
      std::unique_lock lock(mu_);
      // A job whose tenant is at its cap stays queued; the connection that
      // ends one of that tenant's fills comes back here and takes it.
      cv_.wait(lock, [&] {
        if (stopping_) return true;
        auto next = queue_.pop();
        if (!next) return false;
        job = std::move(next->job);
        tenant = std::move(next->tenant);
        return true;
      });
      if (stopping_) return;
      in_use_.fetch_add(1);
    }
    FillResult result;
    auto started = Clock::now();
    for (int attempt = 0; attempt < 3; ++attempt) {
      bool fresh = false;
      if (!conn) {
        if (known_down()) {
          result = {Status::unavailable, {}, {}, "PostgreSQL is unreachable"};
          break;
        }
        if (!connect()) {
          result = {Status::unavailable, {}, {}, "PostgreSQL is unreachable"};
          break;
        }
        fresh = true;
      }
      try {
        pqxx::nontransaction tx(*conn);
        pqxx::result r;
        const Statement& st = job.statement;
        if (st.ping) {
          r = tx.exec("SELECT 1");
          result = {Status::ok, "1", {}, {}};
        } else if (st.prepare_only) {
          if (!named() || prepared.insert(st.name).second) prepare_on(*conn, st, named());
          forget_failure(st.entity);
          result = {Status::ok, {}, {}, {}};
        } else if (st.min_lsn && !caught_up(tx, st, started, result.waited, server)) {
          result.status = Status::behind;
          result.message = "the replica had not replayed " + format_lsn(st.min_lsn) + " within postgres.replica_wait";
        } else {
          if (!named()) {
            // The unnamed extended protocol: Parse, Bind and Execute in one
            // round trip, nothing left on the server connection.
            r = tx.exec_params(st.sql, pqxx::prepare::make_dynamic_params(job.args));
          } else {
            if (prepared.insert(st.name).second) conn->prepare(st.name, st.sql);
            r = tx.exec_prepared(st.name, pqxx::prepare::make_dynamic_params(job.args));
          }
          queries_.fetch_add(1, std::memory_order_relaxed);
          forget_failure(st.entity);  // its SQL runs now (fixed and reloaded)
          if (st.batch) {
            result = {Status::ok, {}, {}, {}};
            result.rows.reserve(r.size());
            for (const auto& row : r) result.rows.emplace_back(row[0].c_str(), std::string(row[1].c_str(), row[1].size()));
          } else if (st.single_row && r.empty()) {
            result = {Status::not_found, {}, {}, {}};
          } else if (st.single_row && r.size() > 1) {
            result = {Status::error, {}, {}, "the entity is 'result: row' but its query returned more than one row"};
          } else if (r.empty() || r[0][0].is_null()) {
            result = {Status::error, {}, {}, "the query produced no JSON"};
          } else {
            result = {Status::ok, std::string(r[0][0].c_str(), r[0][0].size()), {}, {}};
          }
        }
        break;
      } catch (const pqxx::broken_connection&) {
        conn.reset();
        // A connection that broke between two fills (server restart) is
        // retried once on a new one; a fresh one that breaks is an outage.
        result = {Status::unavailable, {}, {}, "PostgreSQL connection lost"};
        if (fresh) { mark_down(); break; }
        // Once, not per connection as each is used again, and not in
        // libpqxx's words ("Could not obtain client encoding: not
        // connected" says nothing useful).
        auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
        auto last = closed_logged_ms_.load();
        if (now_ms - last > 60000 && closed_logged_ms_.compare_exchange_strong(last, now_ms))
          spdlog::warn("postgres: the server closed this process's connections (a restart?); each reconnects when it is "
                       "next used, and the fill is retried on the new one");
      } catch (const pqxx::sql_error& e) {
        const std::string& state = e.sqlstate();
        if (pooler_clash(state) && named()) {
          // A pooler in transaction mode gave this fill a server connection
          // that another client prepared on, or that never saw our PREPARE.
          pooler_detected(job.statement, state);
          prepared.clear();
          continue;
        }
        if (state == "57014") {
          result = {Status::timeout, {}, {}, "the query ran past statement_timeout"};
        } else if (connection_class(state)) {
          conn.reset();
          result = {Status::unavailable, {}, {}, "PostgreSQL is unavailable (" + state + ")"};
          if (fresh) { mark_down(); break; }
          continue;
        } else if (job.statement.prepare_only) {
          result = {Status::error, {}, {}, not_prepared(e)};
          prepared.erase(job.statement.name);
          entity_failed(job.statement, result.message);
        } else {
          result = {Status::error, {}, {}, "query failed [" + state + "]: " + one_line_sql_error(e.what())};
          spdlog::error("postgres: entity '{}' ({}): {}", job.statement.entity, job.statement.file, result.message);
          // The SQL itself is wrong (syntax, a missing column): listed for
          // /readyz (the line above already said it), and prepared again next
          // time, so a fixed and reloaded entity recovers.
          if (state.rfind("42", 0) == 0) {
            prepared.erase(job.statement.name);
            entity_failed(job.statement, result.message, /*log=*/false);
          }
        }
        break;
      } catch (const pqxx::transaction_rollback& e) {
        // 40001/40P01. A standby cancels queries that conflict with replay
        // ("canceling statement due to conflict with recovery").
        if (role_ == Role::replica) {
          result = {Status::unavailable, {}, {}, "the replica cancelled the query (recovery conflict)"};
          result.conflict = true;
        } else {
          result = {Status::error, {}, {}, std::string("query failed: ") + one_line_sql_error(e.what())};
          spdlog::error("postgres: entity '{}' ({}): {}", job.statement.entity, job.statement.file, result.message);
        }
        break;
      } catch (const std::exception& e) {
        conn.reset();
        result = {Status::error, {}, {}, std::string("query failed: ") + e.what()};
        spdlog::error("postgres: {}", result.message);
        break;
      }
    }
    result.took = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started);
    {
      std::lock_guard lock(mu_);
      queue_.done(tenant);
    }
    in_use_.fetch_sub(1);
    job.done(std::move(result));
  }
}


bool Pool::caught_up(pqxx::nontransaction& tx, const Statement& st, Clock::time_point started, bool& waited,
                     const std::string& server) {
  // The monitor saw this very server past the position before the fill was
  // submitted: replay only moves forward, so the query's snapshot, taken
  // now, includes it.
  if (st.known_server && !server.empty() && *st.known_server == server && st.known_replayed >= st.min_lsn) return true;
  // On this session, before the query: the query's snapshot, taken after
  // this answer, includes everything replayed up to it.
  const std::string sql = "SELECT coalesce(pg_last_wal_replay_lsn() >= '" + format_lsn(st.min_lsn) + "'::pg_lsn, false)";
  const auto deadline = started + st.wait;
  for (;;) {
    auto r = tx.exec(sql);
    if (std::string_view(r[0][0].c_str()) == "t") return true;
    if (Clock::now() >= deadline) return false;
    waited = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

PoolStats Pool::stats() const {
  PoolStats s;
  s.size = cfg_.pool_size;
  s.in_use = in_use_.load();
  {
    std::lock_guard lock(mu_);
    s.queued = queue_.size();
  }
  s.rejected = rejected_.load();
  s.queries = queries_.load();
  s.up = up_.load();
  return s;
}

}  // namespace sidecache::pg

#pragma once
// A bounded pool of PostgreSQL connections. Each connection is driven by
// libpq's nonblocking API on an Asio executor: the workers' own (the
// daemon's), or else one thread of the pool's. Coroutines hand it a fill and
// co_await the result, which is delivered on their own executor; a fill
// taken by a connection on the caller's own worker costs no thread hand-off.
// Past queue_limit waiting fills, or while PostgreSQL is known to be down, a
// fill fails at once instead of queuing.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sidecache/config/config.hpp"
#include "sidecache/pg/fair_queue.hpp"

namespace boost::asio {
class io_context;
}

namespace sidecache::pg {

struct Outcome;  // one command's result on a connection (src/pg/async_conn.hpp)

// The outcome of one query.
struct FillResult {
  enum class Status {
    ok,           // json holds the result
    not_found,    // a row entity found no row
    unavailable,  // PostgreSQL could not be reached, or the queue is full
    timeout,      // statement_timeout cancelled the query
    error,        // the query failed (message says why)
    behind,       // a replica had not replayed min_lsn within its wait: nothing ran
  };
  Status status = Status::error;
  std::string json;
  std::chrono::microseconds took{0};
  std::string message;
  bool waited = false;  // a replica was waited for (caught up or not)
  bool conflict = false;  // unavailable: a standby cancelled the query (recovery conflict)
  // unavailable without running: the pool refused it (queue full, PostgreSQL
  // known down, or it waited past statement_timeout).
  bool rejected = false;
  bool tenant_full = false;  // rejected because its tenant had max_queued_fills waiting
  std::vector<std::pair<std::string, std::string>> rows;  // a batch statement's (key, JSON) rows
};

// One prepared statement. Each connection prepares it on first use, so a
// config reload can bring new statements (names carry the SQL's hash).
struct Statement {
  std::string name;
  std::string sql;
  bool single_row = false;  // row entity: 0 rows -> not_found, >1 rows -> error
  bool ping = false;        // a health check: SELECT 1
  std::string entity;       // for error lines: whose SQL this is
  std::string file;         // and where it was written
  bool prepare_only = false;  // prepare it on one connection and run nothing (a reload's check)
  // On a replica: run only once this session's server has replayed at
  // least this far (0: no check), waiting up to `wait` for it.
  std::uint64_t min_lsn = 0;
  std::chrono::milliseconds wait{0};
  // What the replica's monitor had seen before this fill was submitted: that
  // `known_server` (server_identity) had replayed `known_replayed`. A session
  // on that very server needs no check of its own when that is far enough.
  std::shared_ptr<const std::string> known_server;
  std::uint64_t known_replayed = 0;
  // Whose fill this is, for the fair queue: the tenant id, kGlobalTenant for
  // a global entity, "" for the pool's own work (checks, pings).
  std::string tenant;
  std::size_t tenant_cap = 0;  // that tenant's fills running at once while this one waits; 0: no cap
  bool batch = false;  // an entity's batch form: every row's (key, JSON) goes to FillResult::rows
};

// The fair queue's name for every global entity's fills: one tenant of its
// own (no tenant id can contain parentheses).
inline constexpr const char* kGlobalTenant = "(global)";
// ... and the staleness audit's re-reads (cache::Filler::fill_background).
inline constexpr const char* kAuditTenant = "(audit)";

// SQL that names the server a session is on: its address, port and the
// postmaster's start time (a restarted or different server differs).
extern const char* const kServerIdentitySql;

// Counters for /readyz and metrics.
struct PoolStats {
  std::size_t size = 0;
  std::size_t in_use = 0;
  std::size_t queued = 0;
  std::size_t idle = 0;  // connections open or not, waiting for a job
  std::uint64_t rejected = 0;
  std::uint64_t queries = 0;
  bool up = false;
};

// Held while a libpqxx connection is opened. libpqxx 6.4 is not safe when
// several threads open connections at once (ThreadSanitizer reported a race
// inside it), so the NOTIFY listener, its probe and the pg module's own
// sessions (session.hpp) open theirs one at a time. (The pool's connections
// are libpq's own, opened without libpqxx: they do not take it.)
std::mutex& connect_mutex();

// cfg.dsn with connect_timeout (cfg.connect_timeout, in whole seconds) added
// unless the DSN sets one, so that an unreachable host costs a bounded time.
// The pool and the NOTIFY listener both connect with it.
std::string conninfo_of(const config::PostgresConfig& cfg);
// The same for another connection string (a replica, listen_dsn).
std::string conninfo_of(const std::string& dsn, const config::PostgresConfig& cfg);

// A PostgreSQL error about an entity's SQL as one line: the message's own
// lines joined, and its "LINE n" (of the wrapped query) given as the line of
// the entity's SQL (the wrapper adds one line before it).
std::string one_line_sql_error(const std::string& what);

class Pool {
 public:
  enum class Role { primary, replica };
  explicit Pool(config::PostgresConfig cfg, Role role = Role::primary, config::TenantLimits tenants = {});
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Opens every connection at once and prepares `warm` on each, so the
  // first requests after a start do not pay for connecting and preparing
  // (a stampede on a cold key right after a deploy included). A connection
  // that cannot be opened now is opened on first use, as always.
  // The connections run on `executors` (round robin); none given, on one
  // thread of the pool's own.
  void start(std::vector<Statement> warm = {}, std::vector<boost::asio::any_io_executor> executors = {});
  // Fails queued fills as unavailable and joins the threads.
  void stop();

  // Runs `statement` with `args` ($1..$n). Completes with a FillResult on
  // the handler's executor.
  template <class Token>
  auto async_run(Statement statement, std::vector<std::string> args, Token&& token) {
    return boost::asio::async_initiate<Token, void(FillResult)>(
        [this, st = std::move(statement)](auto handler, std::vector<std::string> a) mutable {
          using H = decltype(handler);
          auto ex = boost::asio::get_associated_executor(handler);
          auto h = std::make_shared<H>(std::move(handler));
          submit(
              std::move(st), std::move(a),
              [ex, h](FillResult r) { boost::asio::post(ex, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); }); },
              ex);
        },
        token, std::move(args));
  }

  PoolStats stats() const;

  // Prepares each statement on one connection, in the background: a reload
  // brings new SQL, and a statement PostgreSQL refuses is reported (log,
  // failing_entities) now rather than at its first request.
  void prepare_in_background(std::vector<Statement> statements);

  // Entities whose statement PostgreSQL refused to prepare at start (or at
  // a later fill), with the error as one line; empty when all prepared.
  std::vector<std::pair<std::string, std::string>> failing_entities() const;

 private:
  struct Job {
    Statement statement;
    std::vector<std::string> args;
    std::function<void(FillResult)> done;
    std::chrono::steady_clock::time_point deadline;  // past it, a waiting fill gives up
  };

  struct Slot;  // one connection (src/pg/pool_slot.hpp)
  using SlotPtr = std::shared_ptr<Slot>;

  // Queues a fill and wakes an idle connection, one on `near` (the
  // caller's executor) if there is one.
  void submit(Statement statement, std::vector<std::string> args, std::function<void(FillResult)> done,
              const boost::asio::any_io_executor& near = {});
  // A fill refused without running.
  static FillResult refused(std::string why, bool tenant_full = false);
  // A connection's life: connect and warm, then take jobs until stop().
  boost::asio::awaitable<void> serve(SlotPtr slot, std::shared_ptr<const std::vector<Statement>> warm);
  boost::asio::awaitable<bool> connect(Slot& slot);
  boost::asio::awaitable<void> warm_up(Slot& slot, const std::vector<Statement>& warm);
  // Runs one job on the slot's connection (reconnecting, and retrying once
  // on a fresh connection when an old one turns out broken).
  boost::asio::awaitable<FillResult> execute(Slot& slot, const Job& job);
  boost::asio::awaitable<FillResult> execute_once(Slot& slot, const Job& job, bool fresh, bool& retry);
  // Takes the next job for `slot` (job), or marks it idle (idle), or says
  // the pool is stopping (stop); under mu_.
  enum class Take { job, idle, stop };
  Take take(Slot& slot, Job& job, std::string& tenant);
  // Fails fills that waited in the queue longer than statement_timeout, so
  // that no request waits for PostgreSQL longer than a query may run.
  void reap();
  bool known_down() const;
  void mark_down();
  void mark_up();

  config::PostgresConfig cfg_;
  Role role_;
  std::string conninfo_;
  // (Declared before the slots: their timers and sockets belong to it, and
  // must go first.)
  std::unique_ptr<boost::asio::io_context> own_io_;  // when no executors were given
  std::vector<SlotPtr> slots_;
  std::thread own_thread_;
  std::thread reaper_;
  bool started_ = false;

  mutable std::mutex mu_;
  std::condition_variable ended_cv_;   // stop() waits here for the connections to end
  std::size_t serving_ = 0;            // connections still running (under mu_)
  std::condition_variable reaper_cv_;  // the reaper sleeps here
  FairQueue<Job> queue_;
  // Set once, under mu_; read without it where a job runs (no lock per fill).
  std::atomic<bool> stopping_{false};

  std::atomic<std::size_t> in_use_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::atomic<std::uint64_t> queries_{0};
  std::atomic<std::int64_t> down_until_ms_{0};  // steady ms; connects are not retried before
  std::atomic<bool> up_{false};
  std::atomic<std::int64_t> closed_logged_ms_{-60001};  // steady ms of the last "server closed" line
  mutable std::mutex failing_mu_;
  std::map<std::string, std::string> failing_;  // entity -> error
  std::atomic<bool> any_failing_{false};
  std::atomic<bool> unnamed_{false};       // fills use the unnamed statement (prepared: off, or a pooler found)
  std::atomic<bool> clash_logged_{false};  // the pooler line was logged
  bool named() const { return !unnamed_.load(std::memory_order_relaxed); }
  void pooler_detected(const Statement& st, const std::string& state);
  // Whether this session's server has replayed st.min_lsn, polling until
  // started + st.wait; `waited` is set when it polled more than once;
  // nullopt when the check itself failed (`failed` says how).
  boost::asio::awaitable<std::optional<bool>> caught_up(Slot& slot, const Statement& st,
                                                        std::chrono::steady_clock::time_point started, bool& waited,
                                                        Outcome& failed);
  // A failed command's FillResult; `retry` is set when the job should run
  // again (on a new connection, or unnamed after a pooler was found).
  FillResult failure(Slot& slot, const Job& job, Outcome& o, bool fresh, bool& retry);
  // Records an entity whose SQL PostgreSQL refused; logs it (with `log`)
  // when its error is new.
  void entity_failed(const Statement& st, const std::string& error, bool log = true);
  void forget_failure(const std::string& entity);
};

}  // namespace sidecache::pg

#pragma once
// Read replicas: a pool per replica, and a monitor per replica that reads
// how far it has replayed and how far behind the primary that is. Which
// replica a fill may use is decided here; whether it has replayed far
// enough for the key is checked again on the fill's own session (Pool,
// Statement::min_lsn), since the query's snapshot is what must include it.
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sidecache/config/config.hpp"
#include "sidecache/pg/lsn.hpp"
#include "sidecache/pg/pool.hpp"
#include "sidecache/pg/wal_clock.hpp"

namespace sidecache::pg {

class Replica {
 public:
  enum class State {
    connecting,   // not asked yet
    up,           // streaming, within replica_max_lag
    lagging,      // further behind than replica_max_lag: not used
    down,         // unreachable
    not_replica,  // not in recovery (promoted, or not a replica at all): not used
  };
  struct Status {
    State state = State::connecting;
    Lsn replayed = 0;
    std::optional<std::chrono::milliseconds> lag;
  };

  Replica(std::size_t index, const config::PostgresConfig& primary, const std::string& dsn, const WalClock& wal,
          const config::TenantLimits& tenants = {});
  ~Replica();
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  void start(std::vector<Statement> warm, std::vector<boost::asio::any_io_executor> executors = {});
  void stop();

  Pool& pool() { return pool_; }
  // "replica0", ...: the metric label.
  const std::string& label() const { return label_; }
  // The DSN with secrets masked: what /readyz shows.
  const std::string& name() const { return name_; }
  Status status() const;
  bool usable() const { return state_.load(std::memory_order_relaxed) == State::up; }
  Lsn replayed() const { return replayed_.load(std::memory_order_relaxed); }
  // The server the monitor reads (kServerIdentitySql), and what it had
  // replayed, read together: the replayed position was seen on that server.
  std::pair<std::shared_ptr<const std::string>, Lsn> known() const;
  // Says so once when a fill found it down, so the next fill skips it
  // without waiting for the monitor's next look.
  void mark_down();

 private:
  void monitor();

  std::string label_, name_, conninfo_;
  std::chrono::milliseconds max_lag_;
  const WalClock& wal_;
  Pool pool_;
  std::thread thread_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::atomic<State> state_{State::connecting};
  std::atomic<Lsn> replayed_{0};
  std::atomic<std::int64_t> lag_ms_{-1};
  mutable std::mutex known_mu_;
  std::shared_ptr<const std::string> server_;  // under known_mu_
  Lsn server_replayed_ = 0;                    // under known_mu_
};

const char* to_string(Replica::State s);

// `check --connect`: "" when `dsn` answers and is in recovery (a streaming
// replica), else what is wrong.
std::string probe_replica(const config::PostgresConfig& cfg, const std::string& dsn);

class Replicas {
 public:
  explicit Replicas(const config::PostgresConfig& cfg, const config::TenantLimits& tenants = {});
  ~Replicas();

  // The replicas' pools run their connections on `executors` (Pool::start).
  void start(const std::vector<Statement>& warm, const std::vector<boost::asio::any_io_executor>& executors = {});
  void stop();
  bool empty() const { return replicas_.empty(); }
  const std::vector<std::unique_ptr<Replica>>& all() const { return replicas_; }
  WalClock& wal() { return wal_; }

  // A usable replica for a fill that needs `floor` (round robin, those
  // already past it first); nullptr when none may serve it.
  Replica* pick(Lsn floor);
  // The floor for a fill that could not read its key's invalidations (the
  // store is down): the newest primary position this process has read.
  Lsn conservative_floor() const { return wal_.latest(); }
  std::chrono::milliseconds wait() const { return wait_; }

 private:
  WalClock wal_;
  std::vector<std::unique_ptr<Replica>> replicas_;
  std::chrono::milliseconds wait_;
  std::atomic<std::size_t> next_{0};
};

}  // namespace sidecache::pg

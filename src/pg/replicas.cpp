#include "sidecache/pg/replicas.hpp"

#include <spdlog/spdlog.h>

#include <pqxx/pqxx>

#include "session.hpp"

namespace sidecache::pg {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kMonitorInterval = std::chrono::milliseconds(100);

config::PostgresConfig replica_config(const config::PostgresConfig& primary, const std::string& dsn) {
  config::PostgresConfig c = primary;
  c.dsn = dsn;
  c.listen_dsn.clear();
  c.replicas.clear();
  return c;
}

}  // namespace

const char* to_string(Replica::State s) {
  switch (s) {
    case Replica::State::connecting: return "connecting";
    case Replica::State::up: return "up";
    case Replica::State::lagging: return "lagging";
    case Replica::State::down: return "down";
    case Replica::State::not_replica: return "not-a-replica";
  }
  return "?";
}

Replica::Replica(std::size_t index, const config::PostgresConfig& primary, const std::string& dsn, const WalClock& wal,
                 const config::TenantLimits& tenants)
    : label_("replica" + std::to_string(index)),
      name_(config::mask_secrets(dsn)),
      conninfo_(conninfo_of(dsn, primary)),
      max_lag_(primary.replica_max_lag),
      wal_(wal),
      pool_(replica_config(primary, dsn), Pool::Role::replica, tenants) {}

Replica::~Replica() { stop(); }

void Replica::start(std::vector<Statement> warm, std::vector<boost::asio::any_io_executor> executors) {
  pool_.start(std::move(warm), std::move(executors));
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { monitor(); });
}

void Replica::stop() {
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  pool_.stop();
}

Replica::Status Replica::status() const {
  Status s;
  s.state = state_.load();
  s.replayed = replayed_.load();
  auto lag = lag_ms_.load();
  if (lag >= 0) s.lag = std::chrono::milliseconds(lag);
  return s;
}

std::pair<std::shared_ptr<const std::string>, Lsn> Replica::known() const {
  std::lock_guard lock(known_mu_);
  return {server_, server_replayed_};
}

void Replica::mark_down() {
  if (state_.exchange(State::down) != State::down)
    spdlog::warn("postgres: {} ({}) failed a fill; fills use the primary until it answers again", label_, name_);
}

void Replica::monitor() {
  std::unique_ptr<pqxx::connection> conn;
  std::shared_ptr<const std::string> server;
  State logged = State::connecting;
  for (;;) {
    State now_state = State::down;
    try {
      if (!conn) {
        conn = open_session(conninfo_, "sidecache-replica-monitor");
        pqxx::nontransaction tx(*conn);
        server = std::make_shared<const std::string>(tx.exec(kServerIdentitySql)[0][0].c_str());
      }
      pqxx::nontransaction tx(*conn);
      auto r = tx.exec("SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text");
      bool recovering = std::string_view(r[0][0].c_str()) == "t";
      // (Not an optional: gcc 12 at -O3 warns it "may be used uninitialized".)
      Lsn lsn = 0;
      bool known = false;
      if (!r[0][1].is_null())
        if (auto parsed = parse_lsn(r[0][1].c_str())) lsn = *parsed, known = true;
      if (!recovering || !known) {
        now_state = State::not_replica;
        lag_ms_ = -1;
      } else {
        replayed_ = lsn;
        {
          std::lock_guard lock(known_mu_);
          server_ = server;
          server_replayed_ = lsn;
        }
        auto lag = wal_.lag_of(lsn);
        lag_ms_ = lag ? std::chrono::duration_cast<std::chrono::milliseconds>(*lag).count() : -1;
        // Until the primary's position is known, its lag is not: not used yet.
        now_state = !lag ? State::connecting : *lag <= max_lag_ ? State::up : State::lagging;
      }
    } catch (const std::exception& e) {
      conn.reset();
      lag_ms_ = -1;
      {
        std::lock_guard lock(known_mu_);
        server_.reset();  // known again once reconnected
      }
      if (logged != State::down)
        spdlog::warn("postgres: {} ({}) is unreachable: {}; fills use the primary", label_, name_,
                     config::mask_secrets(e.what()));
    }
    state_ = now_state;
    if (now_state != logged) {
      if (now_state == State::up) spdlog::info("postgres: {} ({}) is streaming; fills may use it", label_, name_);
      else if (now_state == State::lagging)
        spdlog::warn("postgres: {} ({}) is further behind than postgres.replica_max_lag ({} ms); fills use the primary",
                     label_, name_, max_lag_.count());
      else if (now_state == State::not_replica)
        spdlog::error("postgres: {} ({}) is not in recovery (promoted, or not a replica); it is not used for fills",
                      label_, name_);
      logged = now_state;
    }
    std::unique_lock lock(stop_mu_);
    if (stop_cv_.wait_for(lock, kMonitorInterval, [&] { return stopping_; })) return;
  }
}

std::string probe_replica(const config::PostgresConfig& cfg, const std::string& dsn) {
  try {
    pqxx::connection conn(conninfo_of(dsn, cfg));
    pqxx::nontransaction tx(conn);
    auto r = tx.exec("SELECT pg_is_in_recovery()");
    if (std::string_view(r[0][0].c_str()) != "t")
      return "not in recovery: this is a primary (or a promoted replica); list only streaming replicas in "
             "postgres.replicas";
    return {};
  } catch (const std::exception& e) {
    return config::mask_secrets(e.what());
  }
}

Replicas::Replicas(const config::PostgresConfig& cfg, const config::TenantLimits& tenants)
    : wal_(WalClock::primary_query(cfg), cfg.replica_max_lag + std::chrono::seconds(1)), wait_(cfg.replica_wait) {
  for (std::size_t i = 0; i < cfg.replicas.size(); ++i)
    replicas_.push_back(std::make_unique<Replica>(i, cfg, cfg.replicas[i], wal_, tenants));
}

Replicas::~Replicas() { stop(); }

void Replicas::start(const std::vector<Statement>& warm, const std::vector<boost::asio::any_io_executor>& executors) {
  if (replicas_.empty()) return;
  wal_.start();
  for (auto& r : replicas_) r->start(warm, executors);
}

void Replicas::stop() {
  for (auto& r : replicas_) r->stop();
  wal_.stop();
}

Replica* Replicas::pick(Lsn floor) {
  if (replicas_.empty() || floor == kUnknownLsn) return nullptr;
  const std::size_t n = replicas_.size();
  const std::size_t first = next_.fetch_add(1, std::memory_order_relaxed);
  Replica* behind = nullptr;
  for (std::size_t i = 0; i < n; ++i) {
    Replica* r = replicas_[(first + i) % n].get();
    if (!r->usable()) continue;
    if (r->replayed() >= floor) return r;
    if (!behind) behind = r;  // may catch up within replica_wait
  }
  return behind;
}

}  // namespace sidecache::pg

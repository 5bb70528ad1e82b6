#include "sidecache/pg/wal_clock.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <pqxx/pqxx>

#include "sidecache/pg/pool.hpp"
#include "session.hpp"

namespace sidecache::pg {

WalClock::WalClock(Query query, Clock::duration window, Clock::duration interval)
    : query_(std::move(query)), window_(window), interval_(interval) {}

WalClock::Query WalClock::primary_query(const config::PostgresConfig& cfg) {
  struct State {
    std::string conninfo;
    std::unique_ptr<pqxx::connection> conn;
    bool warned = false;
  };
  auto st = std::make_shared<State>();
  st->conninfo = conninfo_of(cfg);
  return [st]() -> std::optional<Lsn> {
    try {
      if (!st->conn) st->conn = open_session(st->conninfo, "sidecache-wal-clock");
      pqxx::nontransaction tx(*st->conn);
      // The insert position, not pg_current_wal_lsn(): with asynchronous
      // commit a committed transaction's record may not be written yet.
      auto r = tx.exec("SELECT pg_current_wal_insert_lsn()::text, current_setting('wal_block_size')");
      auto got = parse_lsn(r[0][0].c_str());
      if (got) got = settled_insert_lsn(*got, static_cast<std::uint32_t>(std::strtoul(r[0][1].c_str(), nullptr, 10)));
      if (st->warned) spdlog::info("postgres: the primary's WAL position is readable again");
      st->warned = false;
      return got;
    } catch (const std::exception& e) {
      st->conn.reset();
      if (!st->warned)
        spdlog::warn("postgres: cannot read the primary's WAL position ({}); invalidations meanwhile send the fills they "
                     "cover to the primary",
                     config::mask_secrets(e.what()));
      st->warned = true;
      return std::nullopt;
    }
  };
}

WalClock::~WalClock() { stop(); }

void WalClock::start() {
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { run(); });
}

void WalClock::stop() {
  std::vector<std::function<void(std::optional<Lsn>)>> left;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    left.swap(waiting_);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& w : left) w(std::nullopt);
}

void WalClock::ask(std::function<void(std::optional<Lsn>)> done) {
  {
    std::unique_lock lock(mu_);
    if (stopping_) {
      lock.unlock();
      done(std::nullopt);
      return;
    }
    waiting_.push_back(std::move(done));
  }
  cv_.notify_one();
}

std::optional<std::chrono::steady_clock::duration> lag_since(const std::deque<WalSample>& samples, Lsn replayed,
                                                             std::chrono::steady_clock::time_point now) {
  if (samples.empty()) return std::nullopt;
  // The first position the server has not replayed: it has been behind since then.
  for (const auto& [at, lsn] : samples)
    if (lsn > replayed) return now - at;
  return std::chrono::steady_clock::duration::zero();
}

std::optional<WalClock::Clock::duration> WalClock::lag_of(Lsn replayed, Clock::time_point now) const {
  std::lock_guard lock(mu_);
  return lag_since(samples_, replayed, now);
}

void WalClock::run() {
  auto next_sample = Clock::now();
  for (;;) {
    std::vector<std::function<void(std::optional<Lsn>)>> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait_until(lock, next_sample, [&] { return stopping_ || !waiting_.empty(); });
      if (stopping_) return;
      // Those who asked before the query is sent; later ones wait for the next.
      batch.swap(waiting_);
    }
    std::optional<Lsn> got = query_();
    queries_.fetch_add(1, std::memory_order_relaxed);
    auto now = Clock::now();
    if (got) {
      std::lock_guard lock(mu_);
      Lsn prev = latest_.load();
      if (*got > prev) latest_.store(*got);
      if (samples_.empty() || *got > samples_.back().second) samples_.emplace_back(now, *got);
      while (samples_.size() > 1 && now - samples_[1].first > window_) samples_.pop_front();
    }
    for (auto& w : batch) w(got);
    next_sample = (got ? now + interval_ : now + std::chrono::milliseconds(500));
  }
}

}  // namespace sidecache::pg

#include "sidecache/pg/pool.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <string_view>

#include "pool_internal.hpp"
#include "pool_slot.hpp"

namespace sidecache::pg {
namespace {

using Clock = std::chrono::steady_clock;

// While PostgreSQL refuses connections, fills fail at once for this long
// before the next connect attempt.
constexpr std::int64_t kRetryAfterDownMs = 500;

// An idle connection looks at the queue at least this often (a safety net:
// submit() rings the connection it hands a job to).
constexpr auto kIdleLook = std::chrono::seconds(1);

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

void Pool::start(std::vector<Statement> warm, std::vector<net::any_io_executor> executors) {
  auto shared = std::make_shared<const std::vector<Statement>>(std::move(warm));
  if (executors.empty()) {
    own_io_ = std::make_unique<net::io_context>(1);
    executors.push_back(own_io_->get_executor());
  }
  {
    std::lock_guard lock(mu_);
    started_ = true;
    for (std::size_t i = 0; i < cfg_.pool_size; ++i)
      slots_.push_back(std::make_shared<Slot>(i, executors[i % executors.size()]));
    serving_ = slots_.size();
  }
  for (auto& slot : slots_) net::co_spawn(slot->ex, serve(slot, shared), net::detached);
  if (own_io_) {
    own_thread_ = std::thread([this] {
      // "sc-pg" (a replica's: "sc-replica"), for top -H and perf.
      pthread_setname_np(pthread_self(), role_ == Role::primary ? "sc-pg" : "sc-replica");
      auto guard = net::make_work_guard(*own_io_);
      own_io_->run();
    });
  }
  reaper_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "sc-pg-reaper");
    reap();
  });
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
  FillResult r{FillResult::Status::unavailable, {}, {}, std::move(why)};
  r.rejected = true;
  r.tenant_full = tenant_full;
  return r;
}

void Pool::stop() {
  std::vector<Job> left;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    left = queue_.take_all();
  }
  reaper_cv_.notify_all();
  // Each connection ends on its own executor: a query in flight is given up.
  for (auto& slot : slots_)
    net::post(slot->ex, [slot] {
      slot->bell.cancel();
      slot->conn.abort();
    });
  {
    std::unique_lock lock(mu_);
    if (!ended_cv_.wait_for(lock, std::chrono::seconds(3), [&] { return serving_ == 0; }))
      spdlog::warn("postgres: {} connection(s) did not close in time at shutdown", serving_);
  }
  for (auto& j : left) j.done(refused("shutting down"));
  if (own_thread_.joinable()) {
    own_io_->stop();
    own_thread_.join();
  }
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

void Pool::submit(Statement statement, std::vector<std::string> args, std::function<void(FillResult)> done,
                  const net::any_io_executor& near) {
  SlotPtr ring;
  {
    std::unique_lock lock(mu_);
    if (stopping_ || !started_) {
      lock.unlock();
      done(refused(stopping_ ? "shutting down" : "the pool is not started"));
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
    // An idle connection takes it: one on the caller's own executor if
    // there is one (no thread hand-off either way round).
    // (By their execution context: the same worker's executors may differ
    // in type, say one tracking outstanding work.)
    net::execution_context* here = near ? &net::query(near, net::execution::context) : nullptr;
    for (auto& slot : slots_) {
      if (!slot->idle) continue;
      if (!ring) ring = slot;
      if (here && slot->context == here) {
        ring = slot;
        break;
      }
    }
    if (ring) ring->idle = false;
  }
  if (ring) net::post(ring->ex, [ring] { ring->bell.cancel(); });
}

Pool::Take Pool::take(Slot& slot, Job& job, std::string& tenant) {
  std::lock_guard lock(mu_);
  if (stopping_) return Take::stop;
  // A job whose tenant is at its cap stays queued; the connection that
  // ends one of that tenant's fills comes back here and takes it.
  auto next = queue_.pop();
  if (!next) {
    slot.idle = true;
    return Take::idle;
  }
  slot.idle = false;
  job = std::move(next->job);
  tenant = std::move(next->tenant);
  in_use_.fetch_add(1);
  return Take::job;
}

net::awaitable<void> Pool::serve(SlotPtr slot, std::shared_ptr<const std::vector<Statement>> warm) {
  // Warm: connect now and prepare every entity's statement. A statement
  // that does not prepare is left to fail on first use, with its error.
  if (co_await connect(*slot)) co_await warm_up(*slot, *warm);
  warm.reset();
  for (;;) {
    Job job;
    std::string tenant;
    Take got = take(*slot, job, tenant);
    if (got == Take::stop) break;
    if (got == Take::idle) {
      slot->bell.expires_after(kIdleLook);
      co_await slot->bell.async_wait(net::as_tuple(net::use_awaitable));
      continue;
    }
    FillResult result = co_await execute(*slot, job);
    {
      std::lock_guard lock(mu_);
      queue_.done(tenant);
    }
    in_use_.fetch_sub(1);
    job.done(std::move(result));
  }
  slot->conn.close();
  {
    // Notified under the lock: stop() may destroy the pool as soon as it
    // sees the count reach zero.
    std::lock_guard lock(mu_);
    --serving_;
    ended_cv_.notify_all();
  }
}

net::awaitable<bool> Pool::connect(Slot& slot) {
  slot.prepared.clear();
  slot.server.clear();
  // Another connection may have found PostgreSQL down a moment ago: no
  // attempt that is bound to fail.
  if (known_down()) co_return false;
  std::string error = co_await slot.conn.connect(conninfo_, cfg_.connect_timeout);
  if (error.empty()) {
    // The session's settings, and a replica's server identity.
    const std::string setup = "SET statement_timeout = " + std::to_string(cfg_.statement_timeout.count()) +
                              "; SET application_name = 'sidecache'";
    auto deadline = Clock::now() + cfg_.connect_timeout + cfg_.statement_timeout;
    Outcome o = co_await slot.conn.run([&](PGconn* c) { return PQsendQuery(c, setup.c_str()); }, deadline);
    if (o.kind == Outcome::Kind::ok && role_ == Role::replica) {
      o = co_await slot.conn.run([](PGconn* c) { return PQsendQuery(c, kServerIdentitySql); }, deadline);
      if (o.kind == Outcome::Kind::ok && PQntuples(o.result.get()) == 1) slot.server = PQgetvalue(o.result.get(), 0, 0);
    }
    if (o.kind != Outcome::Kind::ok) error = o.message.empty() ? "the session setup failed" : o.message;
  }
  if (!error.empty()) {
    slot.conn.close();
    if (up_.load() || down_until_ms_.load() == 0)
      spdlog::warn("postgres: connection {} failed: {}", slot.id, config::mask_secrets(error));
    mark_down();
    co_return false;
  }
  mark_up();
  co_return true;
}

net::awaitable<void> Pool::warm_up(Slot& slot, const std::vector<Statement>& warm) {
  std::size_t ready = 0;
  for (const Statement& st : warm) {
    if (st.ping || st.name.empty() || slot.prepared.count(st.name)) continue;
    Outcome o = co_await prepare_on(slot.conn, st, named(), Clock::now() + cfg_.statement_timeout);
    if (o.kind == Outcome::Kind::ok) {
      if (named()) slot.prepared.insert(st.name);
      ++ready;
      continue;
    }
    if (o.kind != Outcome::Kind::sql_error || connection_class(o.sqlstate)) break;
    if (pooler_clash(o.sqlstate)) {
      pooler_detected(st, o.sqlstate);
      slot.prepared.clear();
      continue;
    }
    entity_failed(st, not_prepared(o));
  }
  spdlog::debug("postgres: connection {} open, {} statements prepared", slot.id, ready);
}

PoolStats Pool::stats() const {
  PoolStats s;
  s.size = cfg_.pool_size;
  s.in_use = in_use_.load();
  {
    std::lock_guard lock(mu_);
    s.queued = queue_.size();
    for (const auto& slot : slots_) s.idle += slot->idle ? 1 : 0;
  }
  s.rejected = rejected_.load();
  s.queries = queries_.load();
  s.up = up_.load();
  return s;
}

}  // namespace sidecache::pg

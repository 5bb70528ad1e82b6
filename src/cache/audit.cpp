#include "sidecache/cache/audit.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "sidecache/cache/key.hpp"
#include "sidecache/cache/wall_clock.hpp"

namespace sidecache::cache {

Reread compare(const AuditCase& c, const pg::FillResult& fr) {
  using S = pg::FillResult::Status;
  switch (fr.status) {
    case S::ok: return !c.header.negative() && fr.json == c.body ? Reread::same : Reread::differs;
    case S::not_found: return c.header.negative() ? Reread::same : Reread::differs;
    default: return Reread::unknown;
  }
}

AuditOutcome::Kind decide(const AuditCase& c, const Lookup& now) {
  if (now.status == Lookup::Status::error) return AuditOutcome::Kind::unknown;
  // A watermark or a tombstone at or after the fill's start (ties go to the
  // invalidation, as they do for a reader: judge()).
  if (now.seen_watermark_us >= c.header.created_us) return AuditOutcome::Kind::covered;
  // A key's tombstone is replaced by the next fill, and leaves no trace. A
  // newer fill that began before the served value would have expired means
  // something removed it early: a key invalidation (or a no-cache read or an
  // early refresh, which the audit cannot tell apart; docs say so).
  bool holds_value = now.status == Lookup::Status::fresh || now.status == Lookup::Status::expired;
  if (holds_value && now.header.created_us > c.header.created_us && now.header.created_us < c.header.soft_expiry_us)
    return AuditOutcome::Kind::covered;
  return AuditOutcome::Kind::stale;
}

net::awaitable<Reread> reread(Filler& filler, const AuditCase& c) {
  const config::Entity& e = *c.req.entity;
  // No floor is known: a replica serves it only if it has replayed as far
  // as the primary had written when the fill was asked for.
  pg::FillResult fr = co_await filler.fill_background(e, query_args(e, c.req.values), std::nullopt);
  co_return compare(c, fr);
}

net::awaitable<AuditOutcome::Kind> confirm(Store& store, const AuditCase& c, std::chrono::microseconds grace) {
  if (grace.count() > 0) {
    net::steady_timer timer(co_await net::this_coro::executor, grace);
    co_await timer.async_wait(net::as_tuple(net::use_awaitable));
  }
  const config::Entity& e = *c.req.entity;
  std::vector<std::string> keys = c.req.snapshot->keys.read(e, c.req.values, c.req.key);
  Lookup now = co_await store.lookup(keys, wall_us(), e.column_tags());
  co_return decide(c, now);
}

Auditor::Auditor(std::vector<Store*> stores, Filler& filler, metrics::Metrics* metrics)
    : stores_(std::move(stores)), filler_(filler), metrics_(metrics) {}

bool Auditor::admit(const config::AuditConfig& a) {
  // Audits run one at a time per pool: a backlog means PostgreSQL is busy
  // or slow, and the queue is for fills. Skip.
  if (pending_->load(std::memory_order_relaxed) >= std::min(4u * a.max_per_second, kMaxBacklog)) return false;
  std::lock_guard lock(mu_);
  auto now = std::chrono::steady_clock::now();
  const double rate = a.max_per_second;
  if (refilled_ == std::chrono::steady_clock::time_point{}) tokens_ = rate;
  else tokens_ = std::min(rate, tokens_ + rate * std::chrono::duration<double>(now - refilled_).count());
  refilled_ = now;
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

void Auditor::offer(AuditCase c, unsigned worker, net::any_io_executor ex) {
  if (!admit(c.req.snapshot->cfg->audit)) {
    if (metrics_) metrics_->audit_skipped();
    return;
  }
  pending_->fetch_add(1, std::memory_order_relaxed);
  net::co_spawn(ex, run(std::move(c), worker), net::detached);
}

net::awaitable<void> Auditor::run(AuditCase c, unsigned worker) {
  struct Slot {  // the backlog counts audits waiting for their query
    std::shared_ptr<std::atomic<unsigned>> n;
    void release() {
      if (n) n->fetch_sub(1, std::memory_order_relaxed);
      n.reset();
    }
    ~Slot() { release(); }
  } slot{pending_};
  const config::Entity& e = *c.req.entity;
  Reread r = co_await reread(filler_, c);
  std::uint64_t reread_us = wall_us();
  slot.release();
  if (r == Reread::unknown) co_return;
  if (metrics_) metrics_->audit_check(e.name);
  if (r == Reread::same) co_return;
  AuditOutcome::Kind k = co_await confirm(*stores_[worker], c, c.req.snapshot->cfg->audit.grace);
  if (k == AuditOutcome::Kind::covered && metrics_) metrics_->audit_covered(e.name);
  if (k != AuditOutcome::Kind::stale) co_return;
  double age = filled_ago(c, reread_us);
  if (metrics_) metrics_->audit_stale(e.name, age);
  // The key names the entity instance; the value never appears in a log.
  spdlog::warn("audit: entity '{}' key {}: the cached value differs from PostgreSQL and no invalidation covering it "
               "was recorded (filled {:.1f} s before the re-read); a table it reads is missing from its invalidate_on, "
               "or its triggers are not installed",
               e.name, c.req.key, age);
}

}  // namespace sidecache::cache

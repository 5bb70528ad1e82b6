#include "sidecache/cache/invalidator.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "sidecache/cache/key.hpp"
#include "sidecache/cache/notification.hpp"

namespace sidecache::cache {

const char* to_string(Source s) {
  switch (s) {
    case Source::api: return "api";
    case Source::notify: return "notify";
    case Source::listen: return "listen";
    case Source::replay: return "replay";
  }
  return "?";
}

Invalidator::Invalidator(std::vector<Store*> stores, NearCache* l1, std::string l1_channel, metrics::Metrics* metrics)
    : stores_(std::move(stores)), l1_(l1), l1_channel_(std::move(l1_channel)), metrics_(metrics) {}

net::awaitable<std::optional<std::uint64_t>> Invalidator::apply(const Invalidation& inv, unsigned worker,
                                                                Source source) {
  Store& store = *stores_[worker % stores_.size()];
  const Snapshot& s = *inv.snapshot;
  using Scope = Invalidation::Scope;
  const KeyLayout& k = s.keys;
  // Read after the write it stands for committed (a NOTIFY arrives after the
  // commit; the API is called after it), and before the watermark is
  // written: a fill that sees the watermark reads a replica only once it
  // has replayed this far. A read (a retry, a replay) later than that is
  // only more careful.
  std::uint64_t lsn = 0;
  if (wal_) {
    std::optional<std::uint64_t> got = co_await wal_->now();
    lsn = got ? *got : pg::kUnknownLsn;  // unknown: the fills it covers read the primary
  }
  if (inv.scope == Scope::key) {
    std::optional<std::uint64_t> at = co_await store.tombstone(s.keys, inv.request.key, s.tombstone_ttl_ms, l1_channel_, lsn);
    if (at && metrics_) metrics_->invalidation("key", to_string(source));
    if (at && on_applied_) on_applied_();
    std::vector<std::string> key(1, inv.request.key);
    l1_invalidate(key, at, source);
    co_return at;
  }
  std::vector<std::string> wm;
  if (inv.scope == Scope::tag) wm.push_back(k.tag_mark(inv.tenant, inv.tag));
  else if (inv.scope == Scope::tenant) wm.push_back(k.tenant_mark(inv.tenant));
  else if (inv.scope == Scope::entity && !inv.tenant.empty()) wm.push_back(k.entity_tenant_mark(inv.tenant, inv.entity->name));
  else wm.push_back(k.entity_mark(inv.entity->name));  // a global entity, or all tenants
  std::optional<std::uint64_t> at = co_await store.raise_watermarks(s.keys, wm, s.watermark_ttl_ms, l1_channel_, lsn);
  if (at && metrics_) metrics_->invalidation(to_string(inv.scope), to_string(source));
  if (at && on_applied_) on_applied_();
  l1_invalidate(wm, at, source);
  co_return at;
}

void Invalidator::l1_invalidate(const std::vector<std::string>& keys, std::optional<std::uint64_t> at,
                                Source source) {
  // This process's own copies go at once, before the caller is answered;
  // other processes hear of it on the channel. When the store was not
  // reached the time is not known yet: the keys are held (nothing they cover
  // is served from L1) until the replay applies it and releases them with
  // its real time. A replay that fails again holds nothing more.
  if (!l1_) return;
  const bool replay = source == Source::replay;
  auto now = NearCache::Clock::now();
  for (const auto& k : keys) {
    if (!at) {
      if (!replay) l1_->hold(k, now);
    } else if (replay) {
      l1_->release(k, *at, now);
    } else {
      l1_->invalidate(k, *at, now);
    }
  }
}

net::awaitable<void> Invalidator::apply_or_queue(Invalidation inv, unsigned worker, Source source) {
  std::optional<std::uint64_t> at = co_await apply(inv, worker, source);
  if (at) {
    spdlog::debug("invalidated {} {} {} {} ({})", to_string(inv.scope), inv.entity ? inv.entity->name : "", inv.tenant,
                  inv.request.key, to_string(source));
    co_return;
  }
  queue(std::move(inv));
}

net::awaitable<std::uint64_t> Invalidator::apply_until_applied(const Invalidation& inv, unsigned worker, Source source,
                                                               std::function<void()> first_failure) {
  net::steady_timer retry(co_await net::this_coro::executor);
  for (bool first = true;; first = false) {
    std::optional<std::uint64_t> at = co_await apply(inv, worker, first ? source : Source::replay);
    if (at) co_return *at;
    if (first && first_failure) first_failure();
    retry.expires_after(kRetryEvery);
    co_await retry.async_wait(net::as_tuple(net::use_awaitable));
  }
}

void Invalidator::queue(Invalidation inv) {
  std::lock_guard lock(mu_);
  if (pending_.size() >= kMaxPending) {
    if (!overflow_)
      spdlog::warn("redis: more than {} invalidations wait for Redis; all entities will be invalidated when it is back",
                   kMaxPending);
    overflow_ = true;
    pending_.clear();
    return;
  }
  if (!overflow_) pending_.push_back(std::move(inv));
}

std::size_t Invalidator::pending() const {
  std::lock_guard lock(mu_);
  return pending_.size();
}

net::awaitable<bool> Invalidator::replay_once(std::function<SnapshotPtr()> current, std::function<bool()> store_refused) {
  std::deque<Invalidation> batch;
  bool overflow;
  {
    std::lock_guard lock(mu_);
    if (pending_.empty() && !overflow_) co_return true;
    batch.swap(pending_);
    overflow = overflow_;
    overflow_ = false;
  }
  if (overflow) {
    SnapshotPtr snap = current();
    for (const auto& e : snap->cfg->entities) {
      Invalidation all = whole_entity(e);
      all.attach(snap);
      batch.push_back(std::move(all));
    }
    spdlog::warn("redis: invalidating every entity: invalidations were dropped while Redis was unreachable");
  }
  std::size_t done = 0, total = batch.size();
  bool back = true;
  while (!batch.empty()) {
    Invalidation item = std::move(batch.front());
    batch.pop_front();
    std::optional<std::uint64_t> at = co_await apply(item, 0, Source::replay);
    if (at) {
      ++done;
      continue;
    }
    queue(std::move(item));
    back = false;
    // The store is still away: put back what is left, try again later. One
    // that answers but did not acknowledge (no replica took it, with
    // invalidation_replicas) has applied it: the others are applied too.
    if (!store_refused || store_refused()) {
      for (auto& rest : batch) queue(std::move(rest));
      break;
    }
  }
  if (done) spdlog::info("redis: {} of {} invalidations that waited for Redis are applied", done, total);
  co_return back;
}

net::awaitable<void> Invalidator::replay_loop(std::shared_ptr<net::steady_timer> timer, std::function<bool()> store_refused,
                                              std::function<SnapshotPtr()> current) {
  for (;;) {
    timer->expires_after(kRetryEvery);
    auto [ec] = co_await timer->async_wait(net::as_tuple(net::use_awaitable));
    if (ec) co_return;  // stopping
    if (l1_) l1_->prune(NearCache::Clock::now());  // records age out even when no invalidation comes
    if (store_refused()) continue;
    co_await replay_once(current, store_refused);
  }
}

}  // namespace sidecache::cache

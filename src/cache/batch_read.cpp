// A batch read: many entity requests answered together. Hits come from L1,
// then from one store lookup for all the rest (one MGET); everything else
// (a miss, an expired value, a store that failed) takes the single-key path,
// concurrently, with its singleflight, leases and watermark rules.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include <map>
#include <set>

#include "sidecache/cache/audit.hpp"
#include "sidecache/cache/batch_group.hpp"
#include "sidecache/cache/early_refresh.hpp"
#include "sidecache/cache/error_body.hpp"
#include "sidecache/cache/key.hpp"
#include "sidecache/cache/read_path.hpp"
#include "sidecache/cache/wall_clock.hpp"

namespace sidecache::cache {

net::awaitable<std::vector<ReadResult>> ReadPath::get_many(std::vector<EntityRequest> reqs, unsigned worker) {
  // Shared with the reads spawned below: it outlives this frame if the
  // batch is abandoned (shutdown) while they run.
  struct State {
    std::vector<ReadResult> out;
    std::size_t pending = 0;
    std::optional<net::steady_timer> all_done;
  };
  auto st = std::make_shared<State>();
  st->out.resize(reqs.size());
  std::vector<bool> answered(reqs.size(), false);
  auto ex = co_await net::this_coro::executor;

  // L1.
  std::vector<NearCache::Ticket> tickets(reqs.size());
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    const config::Entity& e = *reqs[i].entity;
    if (!l1_ || e.l1_ttl.count() == 0) continue;
    ValueHeader h;
    std::string body;
    if (l1_->get(reqs[i].key, NearCache::Clock::now(), h, body)) {
      if (audited(*reqs[i].snapshot)) audit(reqs[i], worker, h, body, ex);
      st->out[i] = cached_result(ReadResult::Kind::l1_hit, e, h, std::move(body), wall_us());
      answered[i] = true;
    } else {
      tickets[i] = l1_->ticket();
    }
  }

  // The store: one lookup of every other key.
  std::vector<std::size_t> asked;
  std::vector<std::vector<std::string>> sets;
  std::vector<bool> column_tags;
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    if (answered[i]) continue;
    asked.push_back(i);
    sets.push_back(reqs[i].snapshot->keys.read(*reqs[i].entity, reqs[i].values, reqs[i].key));
    column_tags.push_back(reqs[i].entity->column_tags());
  }
  if (!sets.empty()) {
    std::vector<Lookup> seen = co_await stores_[worker]->lookup_many(sets, wall_us(), column_tags);
    std::uint64_t now = wall_us();
    for (std::size_t j = 0; j < asked.size() && j < seen.size(); ++j) {
      if (seen[j].status != Lookup::Status::fresh) continue;
      std::size_t i = asked[j];
      bool use_l1 = l1_ && reqs[i].entity->l1_ttl.count() > 0;
      st->out[i] = serve_hit(reqs[i], worker, sets[j], use_l1 ? &tickets[i] : nullptr, seen[j], now, ex);
      answered[i] = true;
    }
  }

  // The rest, each as a GET would be, all at once. Keys of one entity with
  // a batch form that differ only in its batch param share a group: their
  // fills become one query.
  std::map<std::string, std::shared_ptr<BatchGroup>> groups;
  std::set<std::string_view> seen_key;
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    if (answered[i]) continue;
    ++st->pending;
    const config::Entity& e = *reqs[i].entity;
    if (!e.batch || !seen_key.insert(reqs[i].key).second) continue;  // a repeated key collapses on its own
    std::string gk = e.name;
    for (std::size_t p = 0; p < reqs[i].values.size(); ++p)
      if (p != e.batch->param) gk += std::string("\0", 1) + reqs[i].values[p];
    auto& g = groups[gk];
    if (!g) {
      g = std::make_shared<BatchGroup>();
      g->entity = &e;
      g->snapshot = reqs[i].snapshot;
    }
    ++g->expected;
    reqs[i].batch_group = g;
  }
  for (auto& r : reqs)
    if (r.batch_group && r.batch_group->expected < 2) r.batch_group.reset();  // alone: no group
  if (st->pending == 0) co_return std::move(st->out);
  st->all_done.emplace(ex, net::steady_timer::time_point::max());
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    if (answered[i]) continue;
    // The request is copied into the spawned function (get() holds it by
    // reference): it lives as long as its read, whatever becomes of this frame.
    auto read = [this, req = reqs[i], worker]() -> net::awaitable<ReadResult> { co_return co_await get(req, false, worker); };
    net::co_spawn(ex, std::move(read), [this, st, i, g = reqs[i].batch_group, ex](std::exception_ptr thrown, ReadResult r) {
      // A read that ended before its group's query did not fill through
      // it: the group stops waiting for it.
      if (g && !g->flushed) {
        --g->expected;
        maybe_flush(g, ex);
      }
      if (thrown) {
        r = ReadResult{};
        r.status = 503;
        r.body = error_body("unavailable", "the read failed");
        r.retry = true;
      }
      st->out[i] = std::move(r);
      if (--st->pending == 0) st->all_done->cancel();
    });
  }
  co_await st->all_done->async_wait(net::as_tuple(net::use_awaitable));
  co_return std::move(st->out);
}

net::awaitable<pg::FillResult> ReadPath::fill_in_group(const EntityRequest& req, std::optional<std::uint64_t> floor) {
  std::shared_ptr<BatchGroup> g = req.batch_group;
  if (g->flushed) {  // too late for the shared query: a query of its own
    co_return co_await filler_.fill(*req.entity, query_args(*req.entity, req.values), floor);
  }
  auto ex = co_await net::this_coro::executor;
  co_return co_await net::async_initiate<decltype(net::use_awaitable), void(pg::FillResult)>(
      [&](auto handler) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        g->waiting.push_back({req.values, floor, [ex, h](pg::FillResult r) {
                                net::post(ex, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); });
                              }});
        ++g->arrivals;
        maybe_flush(g, ex);
      },
      net::use_awaitable);
}

void ReadPath::maybe_flush(const std::shared_ptr<BatchGroup>& g, net::any_io_executor ex) {
  if (g->flushed || g->waiting.empty()) return;
  if (g->waiting.size() >= g->expected) {
    flush(g, ex);
    return;
  }
  // Some keys of the group have not reached their fill yet (their begin is
  // on its way, or another process holds their lease): wait while they keep
  // coming, not for one that does not.
  auto now = std::chrono::steady_clock::now();
  if (!g->timer) {
    g->timer.emplace(ex);
    g->first_arrival = now;
  }
  auto deadline = std::min(now + std::chrono::milliseconds(5), g->first_arrival + std::chrono::milliseconds(100));
  g->timer->expires_at(deadline);  // cancels the wait set before
  g->timer->async_wait([this, g, ex, seen = g->arrivals](const boost::system::error_code& ec) {
    if (!ec && !g->flushed && seen == g->arrivals) flush(g, ex);
  });
}

void ReadPath::flush(const std::shared_ptr<BatchGroup>& g, net::any_io_executor ex) {
  g->flushed = true;
  if (g->timer) g->timer->cancel();
  auto waiting = std::make_shared<std::vector<BatchGroup::Waiting>>(std::move(g->waiting));
  g->waiting.clear();
  std::vector<std::vector<std::string>> values;
  std::optional<std::uint64_t> floor = 0;
  for (auto& w : *waiting) {
    values.push_back(w.values);
    // The answer must include every key's floor; one unknown, and it is unknown.
    if (!w.floor) floor.reset();
    else if (floor) floor = std::max(*floor, *w.floor);
  }
  net::co_spawn(
      ex,
      [this, g, waiting, values = std::move(values), floor]() mutable -> net::awaitable<void> {
        std::vector<pg::FillResult> results;
        try {
          results = co_await filler_.fill_batch(*g->entity, std::move(values), floor);
        } catch (const std::exception& e) {
          pg::FillResult failed;
          failed.status = pg::FillResult::Status::error;
          failed.message = std::string("the batch query failed: ") + e.what();
          results.assign(waiting->size(), failed);
        }
        results.resize(waiting->size());
        for (std::size_t i = 0; i < waiting->size(); ++i) (*waiting)[i].done(std::move(results[i]));
      },
      net::detached);
}

}  // namespace sidecache::cache

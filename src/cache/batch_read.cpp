// A batch read: many entity requests answered together. Hits come from L1,
// then from one store lookup for all the rest (one MGET); everything else
// (a miss, an expired value, a store that failed) takes the single-key path,
// concurrently, with its singleflight, leases and watermark rules.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "sidecache/cache/audit.hpp"
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
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    if (answered[i]) continue;
    asked.push_back(i);
    sets.push_back(read_keys(reqs[i].snapshot->cfg->key_prefix, *reqs[i].entity, reqs[i].values, reqs[i].key));
  }
  if (!sets.empty()) {
    std::vector<Lookup> seen = co_await stores_[worker]->lookup_many(sets, wall_us());
    std::uint64_t now = wall_us();
    for (std::size_t j = 0; j < asked.size() && j < seen.size(); ++j) {
      if (seen[j].status != Lookup::Status::fresh) continue;
      std::size_t i = asked[j];
      const config::Entity& e = *reqs[i].entity;
      if (e.early_refresh_beta > 0 &&
          xfetch_due(now, seen[j].header.soft_expiry_us, seen[j].header.fill_us, e.early_refresh_beta, draw_()))
        spawn_refresh(reqs[i], worker, ex);
      if (l1_ && e.l1_ttl.count() > 0)
        l1_put(e, tickets[i], sets[j], seen[j].header, seen[j].body, reqs[i].values.empty() ? std::string_view{} : std::string_view(reqs[i].values[0]));
      if (audited(*reqs[i].snapshot)) audit(reqs[i], worker, seen[j].header, seen[j].body, ex);
      st->out[i] = cached_result(ReadResult::Kind::hit, e, seen[j].header, std::move(seen[j].body), now);
      answered[i] = true;
    }
  }

  // The rest, each as a GET would be, all at once.
  for (std::size_t i = 0; i < reqs.size(); ++i)
    if (!answered[i]) ++st->pending;
  if (st->pending == 0) co_return std::move(st->out);
  st->all_done.emplace(ex, net::steady_timer::time_point::max());
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    if (answered[i]) continue;
    net::co_spawn(ex, get(reqs[i], false, worker), [st, i](std::exception_ptr thrown, ReadResult r) {
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

}  // namespace sidecache::cache

// RedisStore's calls that span the slots of a Redis Cluster: a batch read
// of keys in many slots, and a mark raised in every slot
// (docs/invalidation.md, "Redis Cluster").
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <map>

#include "sidecache/cache/redis_store.hpp"
#include "sidecache/pg/lsn.hpp"
#include "sidecache/redis/cluster_slots.hpp"
#include "redis_scripts.hpp"

namespace sidecache::cache {
namespace {

// Runs job(i) for every i in [0, n), at most `window` at once, and returns
// when all have ended. Commands issued in one pass of the event loop leave
// in one write per connection: this is how many slots' scripts become one
// pipeline per master.
net::awaitable<void> each_at_once(std::size_t n, std::size_t window, std::function<net::awaitable<void>(std::size_t)> job) {
  auto ex = co_await net::this_coro::executor;
  for (std::size_t base = 0; base < n; base += window) {
    const std::size_t count = std::min(window, n - base);
    auto left = std::make_shared<std::size_t>(count);
    auto done = std::make_shared<net::steady_timer>(ex, net::steady_timer::time_point::max());
    for (std::size_t i = base; i < base + count; ++i)
      net::co_spawn(ex, job(i), [left, done](std::exception_ptr) {
        if (--*left == 0) done->cancel();
      });
    if (*left > 0) co_await done->async_wait(net::as_tuple(net::use_awaitable));
  }
}

constexpr std::size_t kWindow = 2048;

}  // namespace

net::awaitable<std::vector<Lookup>> RedisStore::lookup_by_slot(const std::vector<std::vector<std::string>>& sets,
                                                               std::uint64_t now_us, const std::vector<bool>& column_tags) {
  // A set's keys share its value's slot; sets of one slot go as one MGET.
  std::map<std::uint16_t, std::vector<std::size_t>> by_slot;
  for (std::size_t i = 0; i < sets.size(); ++i) by_slot[redis::key_slot(sets[i].front())].push_back(i);
  std::vector<std::vector<std::size_t>> groups;
  for (auto& [slot, members] : by_slot) groups.push_back(std::move(members));
  std::vector<Lookup> out(sets.size());
  co_await each_at_once(groups.size(), kWindow, [&](std::size_t g) -> net::awaitable<void> {
    std::vector<std::vector<std::string>> part;
    std::vector<bool> tags;
    for (std::size_t i : groups[g]) {
      part.push_back(sets[i]);
      tags.push_back(i < column_tags.size() && column_tags[i]);
    }
    std::vector<Lookup> got = co_await lookup_group(part, now_us, tags);
    for (std::size_t k = 0; k < got.size(); ++k) out[groups[g][k]] = std::move(got[k]);
  });
  co_return out;
}

net::awaitable<std::optional<std::uint64_t>> RedisStore::raise_everywhere(const KeyLayout& layout,
                                                                          const std::vector<std::string>& keys,
                                                                          std::uint64_t ttl_ms, const std::string& channel,
                                                                          std::uint64_t lsn) {
  std::string ttl = std::to_string(std::max<std::uint64_t>(ttl_ms, 1));
  std::string position = lsn ? pg::lsn_hex(lsn) : std::string();
  // No message from the slots' scripts: one for all of them, below.
  std::vector<std::string_view> args(1, ttl);
  args.emplace_back("");
  args.emplace_back(position);
  std::uint64_t newest = 0;
  bool all_raised = true;
  co_await each_at_once(redis::kSlots, kWindow, [&](std::size_t i) -> net::awaitable<void> {
    const auto slot = static_cast<std::uint16_t>(i);
    std::vector<std::string> in_slot;
    for (const auto& k : keys) {
      if (layout.everywhere(k)) in_slot.push_back(layout.copy(slot, k));
      else if (redis::key_slot(k) == slot) in_slot.push_back(k);
    }
    in_slot.push_back(layout.slot_clock(slot));
    redis::Reply r = co_await guarded_eval(scripts::kWatermark, in_slot, args, 0);
    if (!r.is_value()) all_raised = false;
    else newest = std::max<std::uint64_t>(newest, std::strtoull(r.value.c_str(), nullptr, 10));
  });
  if (!all_raised) co_return std::nullopt;  // applied again whole by the replay: raising is idempotent
  for (std::uint16_t slot : conn_->slot_per_master())
    if (!co_await replicated(layout.slot_clock(slot))) co_return std::nullopt;
  if (!channel.empty()) {
    // Every L1 records the mark itself (KeyLayout::l1_key), at the newest
    // of the slots' times: no copy made before its slot's raise survives it.
    std::string message = std::to_string(newest);
    for (const auto& k : keys) message += "\n" + layout.l1_key(k);
    std::string_view argv[] = {"PUBLISH", channel, message};
    redis::Reply r = co_await guarded_command(layout.slot_clock(0), argv, std::chrono::milliseconds(0));
    if (r.failed()) co_return std::nullopt;
  }
  co_return newest;
}

}  // namespace sidecache::cache

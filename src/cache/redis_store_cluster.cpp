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

constexpr std::size_t kSlotsPerScript = 128;  // slots one script raises: a short one (well under 1 ms)

}  // namespace

net::awaitable<std::vector<Lookup>> RedisStore::lookup_by_slot(const std::vector<std::vector<std::string>>& sets,
                                                               std::uint64_t now_us, const std::vector<bool>& column_tags) {
  // A set's keys share its value's slot; sets of one slot go as one MGET.
  std::map<std::uint16_t, std::vector<std::size_t>> by_slot;
  for (std::size_t i = 0; i < sets.size(); ++i) by_slot[redis::key_slot(sets[i].front())].push_back(i);
  std::vector<std::vector<std::size_t>> groups;
  for (auto& [slot, members] : by_slot) groups.push_back(std::move(members));
  std::vector<Lookup> out(sets.size());
  co_await each_at_once(groups.size(), groups.size(), [&](std::size_t g) -> net::awaitable<void> {
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
  std::string position = scripts::lsn_arg(lsn);
  std::vector<std::string> marks, others;
  for (const auto& k : keys) (layout.everywhere(k) ? marks : others).push_back(k);
  std::uint64_t newest = 0;
  bool all_raised = true;
  auto seen = [&](const redis::Reply& r) {
    if (!r.is_value()) all_raised = false;
    else newest = std::max<std::uint64_t>(newest, std::strtoull(r.value.c_str(), nullptr, 10));
  };
  // A mark in one slot (given with the others): as raise_watermarks does.
  for (const auto& k : others) seen(co_await raise_in_slot(layout, std::vector<std::string>(1, k), ttl_ms, "", lsn));
  // The copies, kSlotsPerScript slots per script, one script in flight per
  // master (short ones: a read on that master waits behind one at most); a
  // chunk the master refuses (its map moved: MOVED, a slot migrating) goes
  // slot by slot, each script routed (and redirected) on its own.
  std::vector<std::vector<std::vector<std::uint16_t>>> per_master;
  std::size_t covered = 0;
  for (const auto& slots : conn_->slots_by_master()) {
    covered += slots.size();
    auto& mine = per_master.emplace_back();
    for (std::size_t at = 0; at < slots.size(); at += kSlotsPerScript)
      mine.emplace_back(slots.begin() + static_cast<std::ptrdiff_t>(at),
                        slots.begin() + static_cast<std::ptrdiff_t>(std::min(at + kSlotsPerScript, slots.size())));
  }
  if (covered < redis::kSlots) co_return std::nullopt;  // a slot without a master: replayed later
  // Round-robin over the masters, so that each window holds one of each.
  std::vector<std::vector<std::uint16_t>> chunks;
  for (std::size_t round = 0;; ++round) {
    bool more = false;
    for (auto& mine : per_master)
      if (round < mine.size()) {
        chunks.push_back(std::move(mine[round]));
        more = true;
      }
    if (!more) break;
  }
  const std::string n = std::to_string(marks.size());
  co_await each_at_once(chunks.size(), per_master.size(), [&](std::size_t c) -> net::awaitable<void> {
    const auto& chunk = chunks[c];
    std::vector<std::string> owned;
    owned.reserve(chunk.size() * (marks.size() + 1));
    for (std::uint16_t slot : chunk) {
      owned.push_back(layout.slot_clock(slot));
      for (const auto& m : marks) owned.push_back(layout.copy(slot, m));
    }
    std::vector<std::string_view> args;
    args.reserve(owned.size() + 3);
    args.emplace_back(ttl);
    args.emplace_back(position);
    args.emplace_back(n);
    for (const auto& o : owned) args.emplace_back(o);
    std::vector<std::string> route(1, layout.slot_clock(chunk.front()));
    redis::Reply r = co_await guarded_eval(scripts::kWatermarkSlots, route, args, 0);
    if (r.is_value()) {
      seen(r);
      co_return;
    }
    // (Raising is idempotent: what the refused script did raise stays raised.)
    co_await each_at_once(chunk.size(), chunk.size(), [&](std::size_t i) -> net::awaitable<void> {
      std::vector<std::string> in_slot;
      for (const auto& m : marks) in_slot.push_back(layout.copy(chunk[i], m));
      seen(co_await raise_in_slot(layout, std::move(in_slot), ttl_ms, "", lsn));
    });
  });
  if (!all_raised) co_return std::nullopt;  // applied again whole by the replay: raising is idempotent
  for (const auto& slots : conn_->slots_by_master())
    if (!co_await replicated(layout.slot_clock(slots.front()))) co_return std::nullopt;
  if (!channel.empty()) {
    // Every L1 records the mark itself (KeyLayout::l1_key), at the newest
    // of the slots' times: no copy made before its slot's raise survives it.
    std::string message = std::to_string(newest);
    for (const auto& k : keys) {
      message += '\n';
      message += layout.l1_key(k);
    }
    std::string_view argv[] = {"PUBLISH", channel, message};
    redis::Reply r = co_await guarded_command(layout.slot_clock(0), argv, std::chrono::milliseconds(0));
    if (r.failed()) co_return std::nullopt;
  }
  co_return newest;
}

}  // namespace sidecache::cache

// RedisStore's writes: the fill's begin and commit, the lease's release,
// and the invalidations (tombstones and watermarks). Its reads are in
// redis_store.cpp.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "redis_scripts.hpp"
#include "sidecache/cache/redis_store.hpp"

namespace sidecache::cache {

using scripts::failure_text;
using scripts::parse_us;

net::awaitable<Begin> RedisStore::begin_fill(const KeyLayout& layout, const std::vector<std::string>& keys,
                                             const std::string& lease_key, const std::string& token,
                                             std::uint64_t lease_ttl_ms, std::uint64_t now_us, bool cold) {
  // (gcc 12 miscompiles braced lists inside coroutines: argument vectors are
  // named variables throughout this file.)
  std::vector<std::string> all(keys);
  all.push_back(lease_key);
  all.push_back(layout.clock(keys.front()));
  std::string ttl = std::to_string(std::max<std::uint64_t>(lease_ttl_ms, 1));
  std::vector<std::string_view> args;
  args.push_back(token);
  args.push_back(ttl);
  args.push_back(cold ? "1" : "");
  redis::Reply r = co_await guarded_eval(scripts::kBegin, all, args, kValueHeaderSize);
  Begin b;
  if (r.failed() || r.elements.size() != keys.size() + 3 || !r.elements[keys.size()].is_value()) {
    b.lookup.status = Lookup::Status::error;
    b.lookup.error = r.error;
    co_return b;
  }
  b.ok = true;
  // The connection the answer came over (a later one cannot have been it).
  b.session = conn_->session(keys.front());
  b.leased = r.elements[keys.size() + 1].integer == 1;
  b.only_looked = r.elements[keys.size() + 1].integer == 2;
  b.start_us = parse_us(r.elements[keys.size()].value);
  redis::Reply marks = std::move(r.elements.back());
  r.elements.resize(keys.size());
  b.lookup = interpret(std::move(r), keys.size(), now_us, &marks);
  co_return b;
}

net::awaitable<Commit> RedisStore::commit(const KeyLayout& layout, const std::vector<std::string>& keys,
                                          const std::string& lease_key, const std::string& token, const Begin& begin,
                                          std::uint64_t max_age_us, std::string_view bytes, std::uint64_t ttl_ms) {
  if (begin.session == 0 || conn_->session(keys.front()) != begin.session) {
    // The begin went over another connection (a failover or a reconnect in
    // between): what it wrote, the clock above all, may be lost, and an
    // invalidation since could then be ordered before it. Not stored.
    spdlog::debug("redis: the connection changed while {} was read; not stored", keys.front());
    co_await release(lease_key, token);
    co_return Commit::invalidated;
  }
  std::vector<std::string> all(keys);
  all.push_back(lease_key);
  all.push_back(layout.clock(keys.front()));
  std::string start = std::to_string(begin.start_us), age = std::to_string(max_age_us),
              ttl = std::to_string(std::max<std::uint64_t>(ttl_ms, 1));
  std::vector<std::string_view> args;
  args.push_back(start);
  args.push_back(age);
  args.push_back(bytes);
  args.push_back(ttl);
  args.push_back(token);
  redis::Reply r = co_await guarded_eval(scripts::kCommit, all, args, 0);
  // A timed-out script may still have run (a large value is slow to send):
  // whether it stored is not known.
  if (r.status == redis::Reply::Status::timeout) co_return Commit::unknown;
  if (r.failed()) co_return Commit::error;
  if (r.integer == 1) co_return Commit::stored;
  if (r.integer == 0) co_return Commit::invalidated;
  co_return Commit::too_old;
}

net::awaitable<void> RedisStore::release(const std::string& lease_key, const std::string& token) {
  std::vector<std::string> keys(1, lease_key);
  std::vector<std::string_view> args(1, token);
  redis::Reply r = co_await guarded_eval(scripts::kRelease, keys, args, 0);
  (void)r;
}

net::awaitable<std::optional<std::uint64_t>> RedisStore::tombstone(const KeyLayout& layout, const std::string& key,
                                                                   std::uint64_t ttl_ms, const std::string& channel,
                                                                   std::uint64_t lsn) {
  std::string ttl = std::to_string(std::max<std::uint64_t>(ttl_ms, 1));
  std::string position = scripts::lsn_arg(lsn);
  std::vector<std::string> keys(1, key);
  keys.push_back(layout.clock(key));
  std::vector<std::string_view> args(1, ttl);
  args.emplace_back(channel);
  args.emplace_back(position);
  redis::Reply r = co_await guarded_eval(scripts::kTombstone, keys, args, 0);
  if (!r.is_value()) {
    // (The caller answers 503 and queues it; this says why.)
    spdlog::debug("redis: the tombstone of {} was not written: {}", key, failure_text(r));
    co_return std::nullopt;
  }
  if (!co_await replicated(key)) co_return std::nullopt;
  co_return parse_us(r.value);
}

net::awaitable<bool> RedisStore::replicated(const std::string& key) {
  const config::RedisConfig& cfg = conn_->config();
  if (cfg.invalidation_replicas == 0) co_return true;
  // WAIT gives up after redis.timeout; Redis notices that on its timer
  // (every 100 ms at the default hz 10), so its answer (how many replicas
  // have every write of this connection so far) is awaited that much longer.
  // This connection carries only invalidations (Service), so no read waits
  // behind it.
  std::string want = std::to_string(cfg.invalidation_replicas);
  std::string ms = std::to_string(cfg.timeout.count());
  std::string_view argv[] = {"WAIT", want, ms};
  redis::Reply r = co_await guarded_command(key, argv, 2 * cfg.timeout + std::chrono::milliseconds(150));
  if (r.status != redis::Reply::Status::ok) co_return false;  // counted as a failure by the guard
  if (r.integer >= static_cast<long long>(cfg.invalidation_replicas)) co_return true;
  if (metrics_) metrics_->redis_failure("not_replicated");
  if (!warned_unreplicated_) {
    spdlog::warn("redis: an invalidation reached {} of the {} replicas redis.invalidation_replicas asks for within {} ms: "
                 "it answers 503 and is applied again until they have it",
                 r.integer, cfg.invalidation_replicas, ms);
    warned_unreplicated_ = true;
  }
  co_return false;
}

net::awaitable<redis::Reply> RedisStore::raise_in_slot(const KeyLayout& layout, std::vector<std::string> keys,
                                                        std::uint64_t ttl_ms, std::string_view channel, std::uint64_t lsn) {
  std::string ttl = std::to_string(std::max<std::uint64_t>(ttl_ms, 1));
  std::string position = scripts::lsn_arg(lsn);
  std::vector<std::string_view> args(1, ttl);
  args.emplace_back(channel);
  args.emplace_back(position);
  keys.push_back(layout.clock(keys.front()));
  co_return co_await guarded_eval(scripts::kWatermark, keys, args, 0);
}

net::awaitable<std::optional<std::uint64_t>> RedisStore::raise_watermarks(const KeyLayout& layout,
                                                                          const std::vector<std::string>& keys,
                                                                          std::uint64_t ttl_ms, const std::string& channel,
                                                                          std::uint64_t lsn) {
  if (std::any_of(keys.begin(), keys.end(), [&](const std::string& k) { return layout.everywhere(k); }))
    co_return co_await raise_everywhere(layout, keys, ttl_ms, channel, lsn);
  redis::Reply r = co_await raise_in_slot(layout, keys, ttl_ms, channel, lsn);
  if (!r.is_value()) {
    spdlog::debug("redis: the watermark {} was not raised: {}", keys.front(), failure_text(r));
    co_return std::nullopt;
  }
  if (!co_await replicated(keys.front())) co_return std::nullopt;
  co_return parse_us(r.value);
}

}  // namespace sidecache::cache

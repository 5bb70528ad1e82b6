// sidecache audit: reads keys of each entity from Redis, re-reads each from
// PostgreSQL, and reports the values that differ with no invalidation
// covering them (docs/operations.md, "Staleness audit").
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>

#include "sidecache/app/commands.hpp"
#include "sidecache/cache/key_layout.hpp"
#include "sidecache/cache/audit.hpp"
#include "sidecache/cache/key.hpp"
#include "sidecache/cache/redis_store.hpp"
#include "sidecache/cache/wall_clock.hpp"
#include "sidecache/redis/circuit_breaker.hpp"

namespace sidecache::app {
namespace {

namespace net = boost::asio;

struct Row {
  std::string entity;
  std::size_t checked = 0;
  std::size_t stale = 0;
  double oldest = 0;
  std::vector<std::string> stale_keys;
};

// The SCAN pattern of an entity's value keys (parse_key() has the last word).
std::string pattern_of(const std::string& prefix, const config::Entity& e) {
  std::string p;
  for (char c : prefix) {  // a prefix with glob characters matches itself only
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') p += '\\';
    p += c;
  }
  return p + (e.scope == config::Scope::tenant ? "t:*:" : "g:") + e.name + ":" + e.shape_hash + (e.params.size() > (e.scope == config::Scope::tenant ? 1u : 0u) ? ":*" : "");
}

net::awaitable<std::vector<std::string>> scan(redis::Connection& conn, const std::string& pattern, std::size_t want,
                                              bool& failed) {
  std::vector<std::string> keys;
  std::string cursor = "0";
  do {
    std::vector<std::string_view> argv{"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"};
    redis::Reply r = co_await conn.command(argv);
    if (r.failed() || r.elements.size() != 2) {
      failed = true;
      co_return keys;
    }
    cursor = r.elements[0].value;
    for (auto& k : r.elements[1].elements)
      if (keys.size() < want) keys.push_back(std::move(k.value));
  } while (cursor != "0" && keys.size() < want);
  co_return keys;
}

struct Pending {
  cache::AuditCase c;
  std::size_t row;
  std::uint64_t reread_us;
};

net::awaitable<int> run(const config::Config& cfg, cache::SnapshotPtr snap, redis::Connection& conn,
                        cache::Store& store, cache::Filler& filler, const std::string& only, std::size_t sample,
                        std::vector<Row>& rows) {
  std::vector<Pending> differing;
  for (const auto& e : snap->cfg->entities) {
    if (!only.empty() && e.name != only) continue;
    rows.push_back({e.name});
    bool failed = false;
    auto keys = co_await scan(conn, pattern_of(cfg.key_prefix, e), sample, failed);
    if (failed) {
      std::cerr << "sidecache audit: Redis did not answer SCAN\n";
      co_return 2;
    }
    for (const auto& key : keys) {
      auto values = cache::parse_key(cfg.key_prefix, e, key);
      if (!values) continue;
      cache::AuditCase c;
      c.req.entity = &e;
      c.req.values = std::move(*values);
      c.req.key = key;
      c.req.snapshot = snap;
      cache::Lookup l =
          co_await store.lookup(cache::KeyLayout(cfg).read(e, c.req.values, key), cache::wall_us(), e.column_tags());
      // Only what a reader would be served (fresh, or within its stale window).
      if (l.status != cache::Lookup::Status::fresh && l.status != cache::Lookup::Status::expired) continue;
      c.header = l.header;
      if (!l.header.negative()) c.body = std::move(l.body);
      pg::FillResult fr = co_await filler.fill(e, cache::query_args(e, c.req.values), std::nullopt);
      cache::Reread rr = cache::compare(c, fr);
      if (rr == cache::Reread::unknown) {
        std::cerr << "sidecache audit: entity '" << e.name << "': PostgreSQL did not answer: " << fr.message << "\n";
        co_return 2;
      }
      ++rows.back().checked;
      if (rr == cache::Reread::differs) differing.push_back({std::move(c), rows.size() - 1, cache::wall_us()});
    }
  }
  if (differing.empty()) co_return 0;
  // One grace for all of them: an invalidation on its way gets there.
  net::steady_timer timer(co_await net::this_coro::executor, cfg.audit.grace);
  co_await timer.async_wait(net::as_tuple(net::use_awaitable));
  for (auto& d : differing) {
    if (co_await cache::confirm(store, d.c, {}) != cache::AuditOutcome::Kind::stale) continue;  // (the grace is past)
    Row& r = rows[d.row];
    ++r.stale;
    r.oldest = std::max(r.oldest, cache::filled_ago(d.c, d.reread_us));
    r.stale_keys.push_back(d.c.req.key);
  }
  co_return 0;
}

}  // namespace

int audit(const config::Config& cfg_in, const std::string& entity, std::size_t sample) {
  if (!entity.empty() && !cfg_in.find_entity(entity)) {
    std::cerr << "sidecache audit: no entity named '" << entity << "'\n";
    return 2;
  }
  auto cfg = std::make_shared<config::Config>(cfg_in);
  // One command at a time, SCANs of a large keyspace included.
  cfg->redis.timeout = std::max(cfg->redis.timeout, std::chrono::milliseconds(5000));
  cfg->postgres.pool_size = 2;
  cfg->postgres.replicas.clear();  // the primary is the reference
  auto snap = cache::make_snapshot(cfg, 1);
  spdlog::set_level(spdlog::level::warn);

  net::io_context io(1);
  auto conn = std::make_shared<redis::Connection>(io.get_executor(), cfg->redis, "audit");
  redis::CircuitBreaker breaker({1000000, std::chrono::milliseconds(1000), 1}, {});
  cache::RedisStore store(conn, &breaker);
  pg::Pool pool(cfg->postgres);
  pool.start();
  cache::PoolFiller filler(pool);
  std::vector<Row> rows;
  int status = 2;
  net::co_spawn(io, [&]() -> net::awaitable<void> {
    conn->start();
    status = co_await run(*cfg, snap, *conn, store, filler, entity, sample, rows);
    conn->stop();
  }, [&](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::cerr << "sidecache audit: " << ex.what() << "\n";
      status = 2;
    }
  });
  io.run();
  pool.stop();
  if (status != 0) return status;

  std::size_t stale = 0;
  std::printf("%-24s %12s %8s %20s\n", "entity", "keys checked", "stale", "oldest stale age (s)");
  for (const auto& r : rows) {
    std::printf("%-24s %12zu %8zu %20.1f\n", r.entity.c_str(), r.checked, r.stale, r.oldest);
    stale += r.stale;
  }
  for (const auto& r : rows)
    for (const auto& k : r.stale_keys) std::printf("stale: %s %s\n", r.entity.c_str(), k.c_str());
  if (stale) {
    std::printf("%zu stale value(s): each differs from PostgreSQL with no invalidation recorded since its fill; a table "
                "its entity reads is missing from invalidate_on, or the triggers are not installed\n", stale);
    return 1;
  }
  return 0;
}

}  // namespace sidecache::app

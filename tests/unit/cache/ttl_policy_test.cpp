// The TTL policy's invariants: what keeps invalidations correct however the
// entities' TTLs and the statement timeout are set.
#include <catch2/catch.hpp>

#include "../entity_fixture.hpp"
#include "sidecache/cache/snapshot.hpp"

using namespace sidecache;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<config::Config> config_with(std::chrono::milliseconds statement_timeout,
                                            std::vector<config::Entity> entities) {
  auto cfg = std::make_shared<config::Config>();
  cfg->postgres.statement_timeout = statement_timeout;
  cfg->entities = std::move(entities);
  return cfg;
}

config::Entity entity(std::chrono::microseconds ttl, double jitter, std::chrono::microseconds negative,
                      std::chrono::microseconds sie, std::chrono::microseconds swr) {
  config::Entity e = test::make_entity("e", config::Scope::tenant, {});
  e.ttl = ttl;
  e.ttl_jitter = jitter;
  e.negative_ttl = negative;
  e.stale_if_error = sie;
  e.stale_while_revalidate = swr;
  return e;
}

}  // namespace

TEST_CASE("ttl policy: a tombstone outlives every fill it must stop, a watermark every value it covers") {
  std::vector<std::chrono::milliseconds> timeouts{1ms, 500ms, 5s, 120s};
  std::vector<config::Entity> shapes{
      entity(1s, 0, 1s, 0s, 0s),        entity(5min, 0.1, 30s, 0s, 0s),  entity(1h, 0.5, 10s, 1h, 0s),
      entity(10s, 1.0, 24h, 0s, 10min), entity(24h, 0.2, 1min, 2h, 3h),
  };
  // Every shape alone, and all of them in one configuration.
  std::vector<std::vector<config::Entity>> configs{shapes};
  for (const auto& e : shapes) configs.push_back({e});
  for (auto timeout : timeouts)
  for (const auto& entities : configs) {
    cache::SnapshotPtr s = cache::make_snapshot(config_with(timeout, entities), 3);
    CHECK(s->generation == 3);
    // A fill may be stored only while younger than max_fill_age, which is
    // longer than any query may run; a tombstone lives past it.
    CHECK(s->max_fill_age_us > static_cast<std::uint64_t>(std::chrono::microseconds(timeout).count()));
    CHECK(s->tombstone_ttl_ms * 1000 > s->max_fill_age_us);
    // A crashed filler's lease frees the key only after its query could have ended.
    CHECK(s->lease_ttl_ms > static_cast<std::uint64_t>(timeout.count()));
    for (const auto& e : s->cfg->entities) {
      // The longest a value of e stays in Redis: the largest jitter, or its
      // negative TTL, plus its stale window.
      for (bool negative : {false, true}) {
        cache::ValueHeader h;
        h.created_us = 1'000'000'000;
        auto life = negative ? e.negative_ttl : cache::jittered(e.ttl, e.ttl_jitter, 0.999999);
        h.soft_expiry_us = h.created_us + static_cast<std::uint64_t>(life.count());
        std::uint64_t in_redis_ms = cache::redis_ttl_ms(h, e);
        CHECK(in_redis_ms * 1000 >= h.soft_expiry_us - h.created_us + static_cast<std::uint64_t>(e.stale_window().count()) - 1000);
        CHECK(s->watermark_ttl_ms > in_redis_ms);
      }
    }
  }
}

TEST_CASE("ttl policy: jitter adds a share of ttl * jitter, never less than the ttl") {
  CHECK(cache::jittered(100s, 0.1, 0.0) == 100s);
  CHECK(cache::jittered(100s, 0.1, 0.5) == 105s);
  CHECK(cache::jittered(100s, 0.0, 0.9) == 100s);
  CHECK(cache::jittered(100s, 0.1, 0.999) < 110s);
}

// Invalidator against FakeStore: scopes land on the right keys, and what
// could not reach the store is replayed later, across a reload.
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "../entity_fixture.hpp"
#include "fakes.hpp"
#include "sidecache/cache/invalidator.hpp"
#include "sidecache/cache/key.hpp"

using namespace sidecache;
namespace net = boost::asio;

namespace {

constexpr const char* kOrg = "123e4567-e89b-12d3-a456-426614174000";

struct Fixture {
  net::io_context ioc;
  test::FakeStore store;
  cache::Invalidator inv{{&store}, nullptr, "", nullptr};
  void settle() {
    for (;;) {
      ioc.restart();
      if (ioc.poll() == 0) break;
    }
  }
};

cache::SnapshotPtr snapshot_with(const std::string& entity_name) {
  auto cfg = std::make_shared<config::Config>();
  config::Entity e = test::make_entity(entity_name, config::Scope::tenant, {{"id", config::ParamType::integer}});
  cfg->entities.push_back(std::move(e));
  return cache::make_snapshot(cfg, 1);
}

cache::Invalidation entity_for_tenant(const cache::SnapshotPtr& s) {
  cache::Invalidation i;
  i.scope = cache::Invalidation::Scope::entity;
  i.entity = &s->cfg->entities[0];
  i.tenant = kOrg;
  i.attach(s);
  return i;
}

// With L1: an invalidator that holds and releases L1's marks, and a put of
// a copy of one user value of kOrg (whether L1 took it).
struct WithL1 : Fixture {
  cache::NearCache l1{1 << 20, std::chrono::milliseconds(60000)};
  cache::Invalidator inv{{&store}, &l1, "", nullptr};
  cache::SnapshotPtr s = snapshot_with("user");
  std::vector<std::string> keys{"sc:t:" + std::string(kOrg) + ":user:h:1", cache::tenant_watermark("sc:", kOrg),
                                cache::entity_tenant_watermark("sc:", kOrg, "user"), cache::entity_watermark("sc:", "user")};
  WithL1() { l1.enable(); }
  bool put(std::uint64_t created) {
    cache::ValueHeader h;
    h.created_us = created;
    h.soft_expiry_us = ~0ull;
    auto now = cache::NearCache::Clock::now();
    return l1.put(l1.ticket(), keys, h, "{}", now + std::chrono::seconds(2), now);
  }
};

}  // namespace

TEST_CASE("invalidator: an invalidation queued while the store is down survives a reload until its replay") {
  Fixture f;
  f.store.down = true;
  {
    // The configuration of the request that asked; the reload below drops
    // every other reference to it.
    cache::SnapshotPtr before = snapshot_with("user");
    net::co_spawn(f.ioc, f.inv.apply_or_queue(entity_for_tenant(before), 0, cache::Source::api), net::detached);
    f.settle();
  }
  REQUIRE(f.inv.pending() == 1);
  cache::SnapshotPtr after = snapshot_with("account");  // SIGHUP: a new configuration
  f.store.down = false;
  bool back = false;
  net::co_spawn(f.ioc, f.inv.replay_once([&] { return after; }),
                [&](std::exception_ptr, bool b) { back = b; });
  f.settle();
  CHECK(back);
  CHECK(f.inv.pending() == 0);
  // Replayed with the entity it was asked for (read from the old, freed-by-
  // everyone-else configuration: under ASan a dangling pointer fails here).
  CHECK(f.store.kv.count(cache::entity_tenant_watermark("sc:", kOrg, "user")) == 1);
  CHECK(f.store.kv.count(cache::entity_tenant_watermark("sc:", kOrg, "account")) == 0);
}

TEST_CASE("invalidator: a replay that finds the store still down keeps every invalidation, in order") {
  Fixture f;
  f.store.down = true;
  cache::SnapshotPtr s = snapshot_with("user");
  for (int i = 0; i < 3; ++i) f.inv.queue(entity_for_tenant(s));
  bool back = true;
  net::co_spawn(f.ioc, f.inv.replay_once([&] { return s; }), [&](std::exception_ptr, bool b) { back = b; });
  f.settle();
  CHECK_FALSE(back);
  CHECK(f.inv.pending() == 3);
}

TEST_CASE("invalidator: past kMaxPending the queue gives way to invalidating every entity on recovery") {
  Fixture f;
  cache::SnapshotPtr s = snapshot_with("user");
  for (std::size_t i = 0; i <= cache::Invalidator::kMaxPending; ++i) f.inv.queue(entity_for_tenant(s));
  CHECK(f.inv.pending() == 0);
  net::co_spawn(f.ioc, f.inv.replay_once([&] { return s; }), net::detached);
  f.settle();
  CHECK(f.store.kv.count(cache::entity_watermark("sc:", "user")) == 1);
}

TEST_CASE("invalidator: each scope raises its own mark") {
  Fixture f;
  cache::SnapshotPtr s = snapshot_with("user");
  cache::Invalidation key;
  key.scope = cache::Invalidation::Scope::key;
  key.entity = &s->cfg->entities[0];
  key.request.key = "sc:some-key";
  key.attach(s);
  cache::Invalidation tenant;
  tenant.scope = cache::Invalidation::Scope::tenant;
  tenant.tenant = kOrg;
  tenant.attach(s);
  std::optional<std::uint64_t> at_key, at_tenant;
  net::co_spawn(f.ioc, f.inv.apply(key, 0, cache::Source::api), [&](std::exception_ptr, std::optional<std::uint64_t> a) { at_key = a; });
  f.settle();
  net::co_spawn(f.ioc, f.inv.apply(tenant, 0, cache::Source::api), [&](std::exception_ptr, std::optional<std::uint64_t> a) { at_tenant = a; });
  f.settle();
  REQUIRE(at_key);
  REQUIRE(at_tenant);
  CHECK(*at_tenant > *at_key);
  CHECK(cache::decode_header(f.store.kv.at("sc:some-key"))->tombstone());
  CHECK(f.store.kv.at(cache::tenant_watermark("sc:", kOrg)) == std::to_string(*at_tenant));
}

TEST_CASE("invalidator: with L1, keys invalidated during an outage are served from L1 again after the replay") {
  WithL1 f;
  f.store.down = true;
  net::co_spawn(f.ioc, f.inv.apply_or_queue(entity_for_tenant(f.s), 0, cache::Source::api), net::detached);
  f.settle();
  REQUIRE(f.inv.pending() == 1);
  CHECK_FALSE(f.put(f.store.now()));  // held: the invalidation's time is not known
  f.store.down = false;
  net::co_spawn(f.ioc, f.inv.replay_once([&] { return f.s; }), net::detached);
  f.settle();
  REQUIRE(f.inv.pending() == 0);
  // A value read after the replay is kept and served from L1 again.
  CHECK(f.put(f.store.now()));
}

TEST_CASE("invalidator: apply_until_applied retries until the store takes it, says once that it waits, and releases "
          "what L1 held") {
  WithL1 f;
  f.store.down = true;
  int failures = 0;
  std::optional<std::uint64_t> at;
  cache::Invalidation i = entity_for_tenant(f.s);
  net::co_spawn(f.ioc, f.inv.apply_until_applied(i, 0, cache::Source::listen, [&] { ++failures; }),
                [&](std::exception_ptr, std::uint64_t a) { at = a; });
  // Several tries while the store is down (kRetryEvery apart).
  f.ioc.run_for(cache::Invalidator::kRetryEvery * 3 + std::chrono::milliseconds(50));
  CHECK_FALSE(at);
  CHECK(failures == 1);
  CHECK(f.inv.pending() == 0);  // not queued: the caller waits for it
  CHECK_FALSE(f.put(f.store.now()));  // held: the invalidation's time is not known
  f.store.down = false;
  for (int turns = 0; !at && turns < 50; ++turns) f.ioc.run_for(cache::Invalidator::kRetryEvery);
  REQUIRE(at);
  CHECK(f.store.kv.count(cache::entity_tenant_watermark("sc:", kOrg, "user")) == 1);
  // The hold is released with the mark's time: a value read after it is kept.
  CHECK(f.put(f.store.now()));
}

#pragma once
// A ReadPath over FakeStore and FakeFiller on one io_context that the test
// steps by hand (settle() runs every handler that is ready, and nothing that
// waits on a gate), so concurrent requests interleave deterministically.
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <thread>

#include "../entity_fixture.hpp"
#include "fakes.hpp"
#include "sidecache/cache/key.hpp"
#include "sidecache/cache/read_path.hpp"
#include "sidecache/cache/snapshot.hpp"

namespace sidecache::test {

struct ReadPathFixture {
  static constexpr const char* kOrg = "123e4567-e89b-12d3-a456-426614174000";
  net::io_context ioc;
  FakeStore store;
  FakeFiller filler;
  cache::ReadPath reads{{&store}, filler};
  cache::SnapshotPtr snap;
  const config::Entity* entity = nullptr;
  std::deque<cache::EntityRequest> requests;  // alive while their reads run

  explicit ReadPathFixture(const std::function<void(config::Entity&)>& tweak = {}) {
    auto cfg = std::make_shared<config::Config>();
    config::Entity e = make_entity("user", config::Scope::tenant, {{"id", config::ParamType::integer}});
    e.bind = {0, 1};
    e.ttl_jitter = 0;
    if (tweak) tweak(e);
    cfg->entities.push_back(std::move(e));
    snap = cache::make_snapshot(cfg, 1);
    entity = &snap->cfg->entities[0];
  }

  cache::EntityRequest request(const std::string& id = "7") const {
    cache::EntityRequest r;
    r.entity = entity;
    r.values = {kOrg, id};
    r.key = cache::build_key(snap->cfg->key_prefix, *entity, r.values);
    r.snapshot = snap;
    return r;
  }
  std::string key(const std::string& id = "7") const { return request(id).key; }

  // Starts one read; its result lands in the returned slot when it ends.
  // `threw` is set instead when the read ended with an exception.
  struct Slot {
    std::optional<cache::ReadResult> result;
    bool threw = false;
  };
  std::shared_ptr<Slot> get(const std::string& id = "7", bool no_cache = false) {
    requests.push_back(request(id));
    auto slot = std::make_shared<Slot>();
    net::co_spawn(ioc, reads.get(requests.back(), no_cache, 0), [slot](std::exception_ptr ep, cache::ReadResult r) {
      if (ep) slot->threw = true;
      else slot->result = std::move(r);
    });
    return slot;
  }
  // A batch read of `ids`, run to its end (a batch group's timer is a real
  // timer: the loop waits for it).
  std::vector<cache::ReadResult> get_many(const std::vector<std::string>& ids) {
    std::vector<cache::EntityRequest> reqs;
    for (const auto& id : ids) reqs.push_back(request(id));
    auto out = std::make_shared<std::optional<std::vector<cache::ReadResult>>>();
    net::co_spawn(ioc, reads.get_many(std::move(reqs), 0),
                  [out](std::exception_ptr, std::vector<cache::ReadResult> r) { *out = std::move(r); });
    for (int i = 0; i < 1000 && !*out; ++i) {
      settle();
      if (!*out) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return out->value_or(std::vector<cache::ReadResult>{});
  }
  // A fill raced by an invalidation between its read and its store: the
  // leader has read (filler.body) and waits to store, its call sealed;
  // `mark` is raised (the invalidation has answered), the row becomes
  // `next`, and a follower begins and joins the fill; then the commit goes
  // ahead. Both have answered when it returns.
  struct CommitRace {
    std::shared_ptr<Slot> leader, follower;
  };
  CommitRace race_a_commit(const std::string& mark, const std::string& next) {
    Gate commit_gate(ioc);
    store.commit_gate = &commit_gate;
    auto leader = get();
    settle();
    REQUIRE(store.commits == 1);
    run(store.raise_watermarks(snap->keys, {mark}, 1000, "", 0));
    filler.body = next;
    auto follower = get();
    settle();
    commit_gate.open();
    settle();
    store.commit_gate = nullptr;
    REQUIRE(leader->result);
    REQUIRE(follower->result);
    return {leader, follower};
  }
  // Runs a store call to its end.
  template <class Awaitable>
  void run(Awaitable a) {
    net::co_spawn(ioc, std::move(a), net::detached);
    settle();
  }
  void settle() {
    for (;;) {
      ioc.restart();
      if (ioc.poll() == 0) break;
    }
  }
  // A value as an earlier fill left it: created `age` ago, fresh for `fresh_for` more (negative: expired).
  void put_value(const std::string& body, std::chrono::microseconds age, std::chrono::microseconds fresh_for,
                 std::uint32_t fill_us = 1000, const std::string& id = "7") {
    cache::ValueHeader h;
    std::uint64_t now = store.now();
    h.created_us = now - static_cast<std::uint64_t>(age.count());
    h.soft_expiry_us = static_cast<std::uint64_t>(static_cast<std::int64_t>(now) + fresh_for.count());
    h.fill_us = fill_us;
    store.put(key(id), h, body);
  }
};

}  // namespace sidecache::test

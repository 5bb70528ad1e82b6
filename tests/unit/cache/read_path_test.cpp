// The read path's rules, against FakeStore and FakeFiller (no sockets).
#include <catch2/catch.hpp>

#include <thread>

#include "read_path_fixture.hpp"

using namespace sidecache;
using test::ReadPathFixture;
using K = cache::ReadResult::Kind;
using namespace std::chrono_literals;

TEST_CASE("read path: 50 concurrent misses on one key make one fill, and every request gets its value") {
  ReadPathFixture f;
  test::Gate gate(f.ioc);
  f.filler.gate = &gate;
  std::vector<std::shared_ptr<ReadPathFixture::Slot>> slots;
  for (int i = 0; i < 50; ++i) slots.push_back(f.get());
  f.settle();
  CHECK(f.filler.calls == 1);
  gate.open();
  f.settle();
  int miss = 0, collapsed = 0;
  for (auto& s : slots) {
    REQUIRE(s->result);
    CHECK(s->result->status == 200);
    CHECK(s->result->body == R"({"v":1})");
    if (s->result->kind == K::miss) ++miss;
    if (s->result->kind == K::collapsed) ++collapsed;
  }
  CHECK(miss == 1);
  CHECK(collapsed == 49);
  // The followers waited for the fill in flight without reading the store.
  CHECK(f.store.lookups == 1);
  CHECK(slots[0]->result->stored);
  // Stored: the next read is a hit and makes no fill.
  auto next = f.get();
  f.settle();
  CHECK(next->result->kind == K::hit);
  CHECK(f.filler.calls == 1);
  CHECK(cache::cache_status(*next->result) == "sidecache; hit");
}

TEST_CASE("read path: a follower refuses a result older than an invalidation it saw") {
  ReadPathFixture f;
  // The tenant is invalidated while the leader waits to store; a request
  // that sees it joins the fill.
  auto [leader, follower] =
      f.race_a_commit(cache::tenant_watermark(f.snap->cfg->key_prefix, ReadPathFixture::kOrg), R"({"v":2})");
  // The leader answers what it read, without storing it (the invalidation came after its start).
  CHECK(leader->result->body == R"({"v":1})");
  CHECK_FALSE(leader->result->stored);
  // The follower saw the invalidation: it must not take that read; it filled again.
  CHECK(follower->result->body == R"({"v":2})");
  CHECK(f.filler.calls == 2);
}

TEST_CASE("read path: a fill is not stored when an invalidation races it") {
  ReadPathFixture f;
  test::Gate gate(f.ioc);
  f.filler.gate = &gate;
  auto first = f.get();
  f.settle();
  REQUIRE(f.filler.calls == 1);
  f.run(f.store.tombstone(f.snap->keys, f.key(), 1000, "", 0));  // while PostgreSQL is read
  gate.open();
  f.settle();
  REQUIRE(first->result);
  CHECK(first->result->status == 200);
  CHECK_FALSE(first->result->stored);
  CHECK(cache::cache_status(*first->result) == "sidecache; fwd=miss");
  CHECK_FALSE(f.store.has_value(f.key()));
  // The next read fills again, and this one is stored.
  auto second = f.get();
  f.settle();
  CHECK(f.filler.calls == 2);
  CHECK(second->result->stored);
  CHECK(f.store.has_value(f.key()));
}

TEST_CASE("read path: stale_if_error serves the expired value when the fill fails, else the failure") {
  SECTION("allowed") {
    ReadPathFixture f([](config::Entity& e) { e.stale_if_error = 60s; });
    f.put_value(R"({"old":1})", 10s, -1s);
    f.filler.fail = true;
    auto r = f.get();
    f.settle();
    REQUIRE(r->result);
    CHECK(r->result->kind == K::stale_error);
    CHECK(r->result->status == 200);
    CHECK(r->result->body == R"({"old":1})");
    CHECK(r->result->age_s == 10);
    CHECK(cache::outcome_of(*r->result) == metrics::Outcome::stale);
    CHECK(cache::cache_status(*r->result) == "sidecache; hit; fwd=stale; detail=error");
  }
  SECTION("past the window") {
    ReadPathFixture f([](config::Entity& e) { e.stale_if_error = 60s; });
    f.put_value(R"({"old":1})", 100s, -61s);
    f.filler.fail = true;
    auto r = f.get();
    f.settle();
    REQUIRE(r->result);
    CHECK(r->result->status == 503);
    CHECK(r->result->retry);
    CHECK(cache::outcome_of(*r->result) == metrics::Outcome::error);
  }
}

TEST_CASE("read path: stale_while_revalidate answers at once and refreshes once in the background") {
  ReadPathFixture f([](config::Entity& e) { e.stale_while_revalidate = 60s; });
  f.put_value(R"({"old":1})", 10s, -1s);
  test::Gate gate(f.ioc);
  f.filler.gate = &gate;
  f.filler.body = R"({"new":1})";
  auto a = f.get();
  auto b = f.get();
  f.settle();
  REQUIRE(a->result);
  REQUIRE(b->result);
  for (auto& r : {a, b}) {
    CHECK(r->result->kind == K::stale_revalidating);
    CHECK(r->result->body == R"({"old":1})");
  }
  CHECK(f.filler.calls == 1);  // one refresh, still running
  gate.open();
  f.settle();
  auto c = f.get();
  f.settle();
  CHECK(c->result->kind == K::hit);
  CHECK(c->result->body == R"({"new":1})");
  CHECK(f.filler.calls == 1);
}

TEST_CASE("read path: XFetch refreshes a fresh value early when the draw says so, and only then") {
  auto setup = [](ReadPathFixture& f) {
    // Fresh for 1 s more; its fill took 100 ms.
    f.put_value(R"({"old":1})", 10s, 1s, 100000);
    f.filler.body = R"({"new":1})";
  };
  SECTION("due: -delta * beta * ln(r) reaches past the expiry") {
    ReadPathFixture f([](config::Entity& e) { e.early_refresh_beta = 1.0; });
    setup(f);
    f.reads.set_random([] { return 1e-300; });  // ln(r) ~ -690: 69 s ahead
    auto r = f.get();
    f.settle();
    CHECK(r->result->kind == K::hit);
    CHECK(r->result->body == R"({"old":1})");
    CHECK(f.filler.calls == 1);
    auto next = f.get();
    f.settle();
    CHECK(next->result->body == R"({"new":1})");
  }
  SECTION("not due") {
    ReadPathFixture f([](config::Entity& e) { e.early_refresh_beta = 1.0; });
    setup(f);
    f.reads.set_random([] { return 1.0; });  // ln(1) = 0: only at expiry
    auto r = f.get();
    f.settle();
    CHECK(r->result->body == R"({"old":1})");
    CHECK(f.filler.calls == 0);
  }
  SECTION("off") {
    ReadPathFixture f;
    setup(f);
    f.reads.set_random([] { return 1e-300; });
    auto r = f.get();
    f.settle();
    CHECK(f.filler.calls == 0);
  }
}

TEST_CASE("read path: the leader guard answers every waiter when the leader throws") {
  ReadPathFixture f;
  test::Gate gate(f.ioc);
  f.filler.gate = &gate;
  f.filler.throws = true;
  std::vector<std::shared_ptr<ReadPathFixture::Slot>> slots;
  for (int i = 0; i < 5; ++i) slots.push_back(f.get());
  f.settle();
  gate.open();
  f.settle();
  CHECK(slots[0]->threw);
  for (std::size_t i = 1; i < slots.size(); ++i) {
    REQUIRE(slots[i]->result);
    CHECK(slots[i]->result->status == 503);
    CHECK(slots[i]->result->retry);
    CHECK(slots[i]->result->body.find("abandoned") != std::string::npos);
  }
  // Nothing is left behind: the next read leads a fill of its own.
  f.filler.throws = false;
  auto next = f.get();
  f.settle();
  CHECK(next->result->status == 200);
  CHECK(f.filler.calls == 2);
}

TEST_CASE("read path: with the store down every read is answered from the fill, collapsed, not stored") {
  ReadPathFixture f;
  f.store.down = true;
  test::Gate gate(f.ioc);
  f.filler.gate = &gate;
  auto a = f.get();
  auto b = f.get();
  f.settle();
  gate.open();
  f.settle();
  CHECK(f.filler.calls == 1);
  CHECK(a->result->status == 200);
  CHECK(b->result->status == 200);
  CHECK_FALSE(a->result->stored);
  CHECK(f.store.commits == 0);
}

TEST_CASE("read path: with the store refusing reads, a request does not take a database read that began before an "
          "invalidation this process answered, and reads again") {
  ReadPathFixture f;
  f.store.down = true;
  test::Gate gate(f.ioc);
  f.filler.gate = &gate;
  auto a = f.get();  // its read of PostgreSQL begins
  f.settle();
  // An invalidation is answered (the store took it while refusing reads:
  // a migrating slot), then the row changes... in that order for the
  // database, so a read begun before it may hold the old row.
  f.reads.invalidation_answered();
  f.filler.body = R"({"v":2})";
  auto b = f.get();
  f.settle();
  gate.open();
  f.settle();
  REQUIRE(a->result);
  REQUIRE(b->result);
  CHECK(a->result->status == 200);
  CHECK(b->result->body == R"({"v":2})");
  CHECK(f.filler.calls == 2);  // b read PostgreSQL itself
}

TEST_CASE("read path: no-cache fills even when a fresh value is stored, and says so") {
  ReadPathFixture f;
  f.put_value(R"({"old":1})", 1s, 60s);
  auto r = f.get("7", true);
  f.settle();
  CHECK(f.filler.calls == 1);
  CHECK(r->result->kind == K::bypass);
  CHECK(r->result->body == R"({"v":1})");
  CHECK(cache::cache_status(*r->result) == "sidecache; fwd=request; stored");
  CHECK(cache::outcome_of(*r->result) == metrics::Outcome::bypass);
}

TEST_CASE("read path: max_concurrent_fills answers a fast 503 past the cap, and frees its slot") {
  ReadPathFixture f([](config::Entity& e) { e.max_concurrent_fills = 1; });
  test::Gate gate(f.ioc);
  f.filler.gate = &gate;
  auto a = f.get("1");
  auto b = f.get("2");
  f.settle();
  REQUIRE(b->result);
  CHECK(b->result->status == 503);
  CHECK(f.filler.calls == 1);
  gate.open();
  f.settle();
  CHECK(a->result->status == 200);
  auto c = f.get("3");
  f.settle();
  CHECK(c->result->status == 200);
}

TEST_CASE("read path: requests that come while the leader stores join it instead of filling again") {
  ReadPathFixture f;
  test::Gate commit_gate(f.ioc);
  f.store.commit_gate = &commit_gate;
  auto leader = f.get();
  f.settle();
  REQUIRE(f.store.commits == 1);  // sealed: later requests read the store, then join
  std::vector<std::shared_ptr<ReadPathFixture::Slot>> slots;
  for (int i = 0; i < 10; ++i) slots.push_back(f.get());
  f.settle();
  commit_gate.open();
  f.settle();
  CHECK(f.filler.calls == 1);
  CHECK(f.store.begins == 1);
  for (auto& s : slots) {
    REQUIRE(s->result);
    CHECK(s->result->kind == K::collapsed);
    CHECK(s->result->body == R"({"v":1})");
  }
}

TEST_CASE("read path: a value over max_value_bytes is answered, not stored, says so, and frees its lease") {
  ReadPathFixture f([](config::Entity& e) { e.max_value_bytes = 64; });
  f.filler.body = R"({"blob":")" + std::string(100, 'x') + R"("})";
  auto r = f.get();
  f.settle();
  REQUIRE(r->result);
  CHECK(r->result->status == 200);
  CHECK(r->result->body == f.filler.body);
  CHECK_FALSE(r->result->stored);
  CHECK(r->result->too_large);
  CHECK(cache::cache_status(*r->result) == "sidecache; fwd=miss; detail=too-large");
  CHECK_FALSE(f.store.has_value(f.key()));
  CHECK(f.store.commits == 0);
  for (const auto& [k, v] : f.store.kv) CHECK(k.find("ls:") == std::string::npos);  // no lease left behind
  // Small enough: stored as usual.
  f.filler.body = R"({"v":2})";
  auto small = f.get();
  f.settle();
  CHECK(small->result->stored);
}

TEST_CASE("read path: a store that got no answer in time says it may or may not have happened") {
  ReadPathFixture f;
  f.store.commit_result = cache::Commit::unknown;
  auto r = f.get();
  f.settle();
  REQUIRE(r->result);
  CHECK(r->result->status == 200);
  CHECK_FALSE(r->result->stored);
  CHECK(cache::cache_status(*r->result) == "sidecache; fwd=miss; detail=store-unknown");
}

TEST_CASE("batch read: hits come from one store lookup for every item, misses fill once per key, results keep their order") {
  ReadPathFixture f;
  auto run_batch = [&](const std::vector<std::string>& ids) { return f.get_many(ids); };
  f.put_value(R"({"id":1})", std::chrono::seconds(1), std::chrono::minutes(1), 1000, "1");
  f.put_value(R"({"id":2})", std::chrono::seconds(1), std::chrono::minutes(1), 1000, "2");
  // 1 and 2 cached; 3 and 4 cold, 3 asked twice.
  auto first = run_batch({"1", "3", "2", "3", "4"});
  REQUIRE(first.size() == 5);
  CHECK(first[0].kind == cache::ReadResult::Kind::hit);
  CHECK(first[0].body == R"({"id":1})");
  CHECK(first[2].kind == cache::ReadResult::Kind::hit);
  CHECK(first[2].body == R"({"id":2})");
  for (int i : {1, 3, 4}) CHECK(first[static_cast<std::size_t>(i)].status == 200);
  CHECK(f.filler.calls == 2);  // 3 once (collapsed), 4 once
  CHECK(f.store.lookup_manys == 1);
  // Now everything is cached: one lookup for all, no fill, no single lookup.
  int lookups_before = f.store.lookups;
  auto second = run_batch({"4", "3", "2", "1"});
  for (const auto& r : second) CHECK(r.kind == cache::ReadResult::Kind::hit);
  CHECK(second[0].body == f.filler.body);
  CHECK(second[3].body == R"({"id":1})");
  CHECK(f.filler.calls == 2);
  CHECK(f.store.lookup_manys == 2);
  CHECK(f.store.lookups == lookups_before);
}

TEST_CASE("batch read with a batch form: the cold keys of one tenant fill with one query, each stored under its own key") {
  ReadPathFixture f([](config::Entity& e) {
    config::BatchForm b;
    b.param = 1;
    b.key_column = "id";
    e.batch = b;
  });
  auto run_batch = [&](const std::vector<std::string>& ids) { return f.get_many(ids); };
  std::vector<std::string> ids;
  for (int i = 1; i <= 50; ++i) ids.push_back(std::to_string(i));
  ids.push_back("7");  // asked twice: one fill
  auto first = run_batch(ids);
  REQUIRE(first.size() == 51);
  for (std::size_t i = 0; i < 50; ++i) {
    CHECK(first[i].status == 200);
    CHECK(first[i].body == "{\"v\":\"" + ids[i] + "\"}");
    CHECK(first[i].stored);
  }
  CHECK(first[50].body == "{\"v\":\"7\"}");
  CHECK(f.filler.batch_calls == 1);
  CHECK(f.filler.calls == 0);
  REQUIRE(f.filler.batch_sizes.size() == 1);
  CHECK(f.filler.batch_sizes[0] == 50);
  // Stored each under its own key: all hits now.
  auto second = run_batch(ids);
  for (const auto& r : second) CHECK(r.kind == cache::ReadResult::Kind::hit);
  CHECK(second[9].body == "{\"v\":\"10\"}");
  CHECK(f.filler.batch_calls == 1);
}

TEST_CASE("read path with L1: copies are kept under their request's tenant, so l1.max_tenant_share bounds each tenant") {
  ReadPathFixture f([](config::Entity& e) { e.l1_ttl = std::chrono::seconds(30); });
  const std::size_t max = 4 << 20;
  cache::NearCache l1(max, std::chrono::milliseconds(60000), 0.25);
  l1.enable();
  cache::ReadPath reads({&f.store}, f.filler, &l1);
  f.filler.body = std::string(1000, 'x');
  auto read = [&](const std::string& org, int id) {
    cache::EntityRequest r = f.request(std::to_string(id));
    r.values[0] = org;
    r.key = cache::build_key(f.snap->cfg->key_prefix, *f.entity, r.values);
    f.requests.push_back(r);
    boost::asio::co_spawn(f.ioc, reads.get(f.requests.back(), false, 0), boost::asio::detached);
    f.settle();
  };
  const std::string quiet = "00000000-0000-0000-0000-000000000001", noisy = "00000000-0000-0000-0000-000000000002";
  for (int i = 0; i < 50; ++i) read(quiet, i);
  for (int i = 0; i < 8000; ++i) read(noisy, i);
  CHECK(l1.tenant_bytes(quiet) > 0);
  CHECK(l1.tenant_bytes(noisy) > 0);
  CHECK(l1.tenant_bytes(noisy) <= max / 4);
  for (int i = 0; i < 50; ++i) read(quiet, i);  // still in L1: no fill
  CHECK(f.filler.calls == 50 + 8000);
}

// The cold guess: a worker whose recent looks at an entity found nothing
// fills that entity's keys without a lookup first, and a wrong guess still
// answers right (FakeStore, FakeFiller).
#include <catch2/catch.hpp>

#include "read_path_fixture.hpp"

using namespace sidecache;
using test::ReadPathFixture;
using K = cache::ReadResult::Kind;
using namespace std::chrono_literals;

namespace {

// Misses on `n` distinct keys, one after the other.
void miss_many(ReadPathFixture& f, int n, int first = 1000) {
  for (int i = 0; i < n; ++i) {
    auto r = f.get(std::to_string(first + i));
    f.settle();
    REQUIRE(r->result);
    REQUIRE(r->result->kind == K::miss);
  }
}

}  // namespace

TEST_CASE("cold guess: counts outcomes per worker and entity, over the last 16 looks") {
  cache::ColdGuess g(2);
  for (int i = 0; i < 15; ++i) g.record(0, "user", true);
  CHECK_FALSE(g.cold(0, "user"));  // not enough looks yet
  g.record(0, "user", true);
  CHECK(g.cold(0, "user"));
  CHECK_FALSE(g.cold(1, "user"));  // the other worker has seen nothing
  CHECK_FALSE(g.cold(0, "org"));
  for (int i = 0; i < 4; ++i) g.record(0, "user", false);
  CHECK(g.cold(0, "user"));  // 12 misses of the last 16
  g.record(0, "user", false);
  CHECK_FALSE(g.cold(0, "user"));  // 11
}

TEST_CASE("read path: once an entity's looks mostly miss, a miss makes no lookup: the begin looks, fills and stores") {
  ReadPathFixture f;
  miss_many(f, 16);
  CHECK(f.store.lookups == 16);
  CHECK(f.store.cold_begins == 0);
  auto r = f.get("1");
  f.settle();
  REQUIRE(r->result);
  CHECK(r->result->kind == K::miss);
  CHECK(r->result->stored);
  CHECK(f.store.lookups == 16);  // none for this one
  CHECK(f.store.cold_begins == 1);
  CHECK(f.store.begins == 17);
  CHECK(f.store.has_value(f.key("1")));
  // The lease was taken and released with the commit.
  CHECK(f.store.kv.count(cache::lease_key(f.snap->keys.prefix(), f.key("1"))) == 0);
}

TEST_CASE("read path: a cold guess that finds a fresh value answers it as a hit, with no lease and no fill") {
  ReadPathFixture f;
  miss_many(f, 16);
  f.put_value(R"({"kept":1})", 1s, 60s);
  int fills = f.filler.calls;
  auto r = f.get();
  f.settle();
  REQUIRE(r->result);
  CHECK(r->result->kind == K::hit);
  CHECK(r->result->body == R"({"kept":1})");
  CHECK(f.filler.calls == fills);
  CHECK(f.store.cold_begins == 1);
  CHECK(f.store.kv.count(cache::lease_key(f.snap->keys.prefix(), f.key())) == 0);
}

TEST_CASE("read path: a hit found by a cold guess is a hit like any other: XFetch may refresh it early") {
  ReadPathFixture f([](config::Entity& e) { e.early_refresh_beta = 1.0; });
  miss_many(f, 16);
  f.put_value(R"({"old":1})", 10s, 1s, 100000);  // fresh for 1 s more; its fill took 100 ms
  f.filler.body = R"({"new":1})";
  f.reads.set_random([] { return 1e-300; });  // due
  int fills = f.filler.calls;
  auto r = f.get();
  f.settle();
  REQUIRE(r->result);
  CHECK(r->result->kind == K::hit);
  CHECK(r->result->body == R"({"old":1})");
  CHECK(f.store.cold_begins == 1);
  CHECK(f.filler.calls == fills + 1);  // the early refresh
}

TEST_CASE("read path: a cold guess that finds an invalidated value begins for real and stores the new row") {
  ReadPathFixture f;
  miss_many(f, 16);
  f.put_value(R"({"old":1})", 1s, 60s);
  f.run(f.store.raise_watermarks(f.snap->keys, {cache::tenant_watermark(f.snap->cfg->key_prefix, ReadPathFixture::kOrg)}, 1000, "", 0));
  f.filler.body = R"({"new":1})";
  int begins = f.store.begins;
  auto r = f.get();
  f.settle();
  REQUIRE(r->result);
  CHECK(r->result->kind == K::miss);
  CHECK(r->result->body == R"({"new":1})");
  CHECK(r->result->stored);
  CHECK(f.store.begins == begins + 2);  // the cold look, then the begin that took the lease
}

TEST_CASE("read path: a cold guess that finds a value past its soft expiry serves it as stale_while_revalidate says") {
  ReadPathFixture f([](config::Entity& e) { e.stale_while_revalidate = 60s; });
  miss_many(f, 16);
  f.put_value(R"({"old":1})", 10s, -1s);
  f.filler.body = R"({"new":1})";
  int fills = f.filler.calls;
  auto r = f.get();
  f.settle();
  REQUIRE(r->result);
  CHECK(r->result->kind == K::stale_revalidating);
  CHECK(r->result->body == R"({"old":1})");
  CHECK(f.filler.calls == fills + 1);  // the background refresh
  auto next = f.get();
  f.settle();
  CHECK(next->result->body == R"({"new":1})");
}

TEST_CASE("read path: with the store down, a cold guess answers from PostgreSQL and waiters share it") {
  ReadPathFixture f;
  miss_many(f, 16);
  f.store.down = true;
  test::Gate gate(f.ioc);
  f.filler.gate = &gate;
  auto a = f.get();
  auto b = f.get();
  f.settle();
  gate.open();
  f.settle();
  REQUIRE(a->result);
  REQUIRE(b->result);
  CHECK(a->result->status == 200);
  CHECK(b->result->status == 200);
  CHECK_FALSE(a->result->stored);
  CHECK(f.filler.calls == 17);  // one query for both
}

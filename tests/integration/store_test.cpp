// cache::RedisStore against the real Redis, below the daemon: the read-sharing
// rule of Store::lookup, which only a single event loop stepped by hand can
// show deterministically.
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unistd.h>
#include <vector>

#include "harness.hpp"
#include "sidecache/cache/redis_store.hpp"
#include "sidecache/cache/value.hpp"
#include "sidecache/redis/circuit_breaker.hpp"
#include "sidecache/redis/connection.hpp"

using namespace sidecache;
using namespace sidecache::it;
namespace net = boost::asio;

namespace {

long long mget_calls() {
  std::string stats = Services::get().redis_cli("INFO commandstats");
  auto pos = stats.find("cmdstat_mget:calls=");
  return pos == std::string::npos ? 0 : std::stoll(stats.substr(pos + 19));
}

std::uint64_t unix_us() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

struct Fixture {
  net::io_context io;
  std::shared_ptr<redis::Connection> conn;
  redis::CircuitBreaker breaker{redis::CircuitBreaker::Settings{}};
  std::unique_ptr<cache::RedisStore> store;
  std::vector<std::string> keys;
  cache::KeyLayout layout;  // names the clock: <base>:clock

  explicit Fixture(const std::string& name) {
    config::RedisConfig rc;
    rc.port = static_cast<std::uint16_t>(Services::get().redis_port());
    rc.timeout = std::chrono::milliseconds(2000);
    conn = std::make_shared<redis::Connection>(io.get_executor(), rc, "store-test");
    store = std::make_unique<cache::RedisStore>(conn, &breaker);
    std::string base = "t:store:" + name + ":" + std::to_string(::getpid());
    keys = {base + ":value", base + ":watermark"};
    layout = cache::KeyLayout(base + ":", false);
    Services::get().redis_cli("DEL " + keys[0] + " " + keys[1] + " " + base + ":clock");
    net::post(io, [c = conn] { c->start(); });
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (conn->state() != redis::State::connected && std::chrono::steady_clock::now() < give_up)
      io.run_one_for(std::chrono::milliseconds(100));
    io.restart();
    REQUIRE(conn->state() == redis::State::connected);
  }
  ~Fixture() {
    net::post(io, [c = conn] { c->stop(); });
    io.restart();
    io.run_for(std::chrono::milliseconds(100));
  }

  // Starts a lookup; its result lands in `out` when the loop runs it.
  void spawn_lookup(cache::Lookup& out, int& done) {
    net::co_spawn(
        io,
        [this, &out, &done]() -> net::awaitable<void> {
          cache::Lookup l = co_await store->lookup(keys, unix_us());
          out = std::move(l);
          ++done;
        },
        net::detached);
  }
};

}  // namespace

TEST_CASE("store: lookups of one key made before the first is written to Redis share one read") {
  Fixture f("share");
  long long before = mget_calls();
  cache::Lookup a, b, c;
  int done = 0;
  // All three start in one turn of the loop: the first MGET is still in
  // hiredis' output buffer when the second and third look.
  f.spawn_lookup(a, done);
  f.spawn_lookup(b, done);
  f.spawn_lookup(c, done);
  while (done < 3 && f.io.run_one_for(std::chrono::seconds(2))) {
  }
  REQUIRE(done == 3);
  CHECK(mget_calls() - before == 1);
  CHECK(a.status == cache::Lookup::Status::miss);
  CHECK(b.status == cache::Lookup::Status::miss);
  CHECK(c.status == cache::Lookup::Status::miss);
  // Once it is answered, the next lookup reads Redis itself.
  cache::Lookup d;
  f.spawn_lookup(d, done);
  while (done < 4 && f.io.run_one_for(std::chrono::seconds(2))) {
  }
  CHECK(mget_calls() - before == 2);
}

TEST_CASE("store: a lookup made after the first was written to Redis reads again, and sees a write made in between") {
  Fixture f("written");
  long long before = mget_calls();
  cache::Lookup first, second;
  int done = 0;
  f.spawn_lookup(first, done);
  // Step the loop until the first MGET has left the output buffer; its
  // reply is not read yet (that takes another turn).
  std::uint64_t writes = f.conn->writes();
  while (f.conn->writes() == writes && f.io.run_one_for(std::chrono::seconds(2))) {
  }
  REQUIRE(f.conn->writes() != writes);
  REQUIRE(done == 0);
  // A write that Redis executes after the first read: a request that began
  // after it must see it, so it cannot be handed the first read.
  cache::ValueHeader h;
  h.created_us = unix_us();
  h.soft_expiry_us = h.created_us + 60'000'000;
  std::string bytes = cache::encode_value(h, R"({"v":2})");
  {
    // On a connection and loop of its own: the first loop must not turn.
    Fixture writer("writer");
    bool stored = false;
    net::co_spawn(
        writer.io,
        [&]() -> net::awaitable<void> {
          redis::Reply r = co_await writer.conn->set_px(f.keys[0], bytes, 60000);
          stored = r.status == redis::Reply::Status::ok;
        },
        net::detached);
    writer.io.restart();
    while (!stored && writer.io.run_one_for(std::chrono::seconds(2))) {
    }
    REQUIRE(stored);
  }
  f.spawn_lookup(second, done);
  while (done < 2 && f.io.run_one_for(std::chrono::seconds(2))) {
  }
  REQUIRE(done == 2);
  CHECK(mget_calls() - before == 2);
  INFO("first: " << first.error);
  CHECK(first.status == cache::Lookup::Status::miss);
  CHECK(second.status == cache::Lookup::Status::fresh);
  CHECK(second.body == R"({"v":2})");
}

namespace {
// Runs one coroutine of the store to completion on f's loop.
template <class T>
T run(Fixture& f, net::awaitable<T> a) {
  std::optional<T> out;
  net::co_spawn(f.io, [&]() -> net::awaitable<void> { out = co_await std::move(a); }, net::detached);
  f.io.restart();
  while (!out && f.io.run_one_for(std::chrono::seconds(2))) {
  }
  REQUIRE(out);
  return std::move(*out);
}
}  // namespace

TEST_CASE("store: invalidations carry the primary's WAL position, a fill's begin reads the highest one, and the "
          "commit still refuses a fill older than a watermark that carries one") {
  Fixture f("lsn");
  const std::string lease = f.keys[0] + ":lease";
  auto begin = [&] { return run(f, f.store->begin_fill(f.layout, f.keys, lease, "tok", 1000, unix_us())); };
  CHECK(begin().lookup.floor_lsn == 0);  // nothing recorded
  std::vector<std::string> wm(1, f.keys[1]);
  REQUIRE(run(f, f.store->raise_watermarks(f.layout, wm, 60000, "", 0x16B374D848)));
  CHECK(begin().lookup.floor_lsn == 0x16B374D848);
  // Never lowered: a later invalidation with an older (or no) position keeps it.
  REQUIRE(run(f, f.store->raise_watermarks(f.layout, wm, 60000, "", 0x100)));
  REQUIRE(run(f, f.store->raise_watermarks(f.layout, wm, 60000, "", 0)));
  CHECK(begin().lookup.floor_lsn == 0x16B374D848);
  REQUIRE(run(f, f.store->raise_watermarks(f.layout, wm, 60000, "", 0x200000000000)));
  CHECK(begin().lookup.floor_lsn == 0x200000000000);
  // The tombstone's position counts too.
  REQUIRE(run(f, f.store->tombstone(f.layout, f.keys[0], 60000, "", 0x300000000000)));
  cache::Begin b = begin();
  CHECK(b.lookup.floor_lsn == 0x300000000000);
  // A fill that began before a watermark "<time>:<position>" is refused.
  REQUIRE(run(f, f.store->raise_watermarks(f.layout, wm, 60000, "", 0x300000000001)));
  std::string bytes = cache::encode_value(cache::ValueHeader{}, "{}");
  CHECK(run(f, f.store->commit(f.layout, f.keys, lease, "tok", b, 60'000'000, bytes, 60000)) == cache::Commit::invalidated);
  // One that began after it stores.
  cache::Begin later = begin();
  CHECK(later.lookup.floor_lsn == 0x300000000001);
  CHECK(run(f, f.store->commit(f.layout, f.keys, lease, "tok", later, 60'000'000, bytes, 60000)) == cache::Commit::stored);
}

TEST_CASE("store: a value with column tags is judged by the watermarks it names, in one round trip, and a tag hint "
          "from an earlier read never judges a value that names other tags") {
  Fixture f("tags");
  const std::string lease = f.keys[0] + ":lease", tag_a = f.keys[0] + ":tagA", tag_b = f.keys[0] + ":tagB";
  Services::get().redis_cli("DEL " + tag_a + " " + tag_b);
  // Stores `body` carrying the tag watermark `tag`, as a fill would.
  auto fill = [&](const std::string& body, const std::string& tag) {
    cache::Begin b = run(f, f.store->begin_fill(f.layout, f.keys, lease, "tok", 1000, unix_us()));
    REQUIRE(b.ok);
    cache::ValueHeader h;
    h.created_us = b.start_us;
    h.soft_expiry_us = unix_us() + 60'000'000;
    std::vector<std::string> tags(1, tag), with(f.keys);
    with.push_back(tag);
    std::string bytes = cache::encode_value(h, body, tags);
    REQUIRE(run(f, f.store->commit(f.layout, with, lease, "tok", b, 60'000'000, bytes, 60000)) == cache::Commit::stored);
  };
  auto look = [&] { return run(f, f.store->lookup(f.keys, unix_us(), true)); };
  auto raise = [&](const std::string& tag) {
    std::vector<std::string> wm(1, tag);
    REQUIRE(run(f, f.store->raise_watermarks(f.layout, wm, 60000, "", 0)));
  };

  fill("{\"v\":1}", tag_a);
  cache::Lookup first = look();  // by the script
  REQUIRE(first.status == cache::Lookup::Status::fresh);
  CHECK(first.body == "{\"v\":1}");
  CHECK(first.tag_keys == std::vector<std::string>{tag_a});
  CHECK(look().status == cache::Lookup::Status::fresh);  // by the MGET with the hint
  // Read without its tags (an entity without column tags), it is a miss.
  CHECK(run(f, f.store->lookup(f.keys, unix_us(), false)).status == cache::Lookup::Status::miss);
  raise(tag_a);
  CHECK(look().status == cache::Lookup::Status::miss);

  // A new fill names tag B; the hint still says A. B is invalidated before
  // any read: the read must see it.
  fill("{\"v\":2}", tag_b);
  raise(tag_b);
  CHECK(look().status == cache::Lookup::Status::miss);
  std::vector<std::vector<std::string>> sets(1, f.keys);
  std::vector<bool> tagged(1, true);
  CHECK(run(f, f.store->lookup_many(sets, unix_us(), tagged)).at(0).status == cache::Lookup::Status::miss);
  fill("{\"v\":3}", tag_b);
  cache::Lookup third = look();
  REQUIRE(third.status == cache::Lookup::Status::fresh);
  CHECK(third.body == "{\"v\":3}");
  CHECK(run(f, f.store->lookup_many(sets, unix_us(), tagged)).at(0).body == "{\"v\":3}");
}

TEST_CASE("connection: a reply of 3000 elements, each an array, is read whole (the element vector grows past its "
          "reserve while nested arrays are read)") {
  Fixture f("big-array");
  redis::Script big("local t = {} for i = 1, 3000 do t[i] = {i, 'v' .. i, {i}} end return t");
  redis::Reply r = run(f, f.conn->eval(big, {}, {}));
  REQUIRE(r.status == redis::Reply::Status::ok);
  REQUIRE(r.elements.size() == 3000);
  for (std::size_t i = 0; i < r.elements.size(); ++i) {
    const redis::Reply& e = r.elements[i];
    REQUIRE(e.elements.size() == 3);
    CHECK(e.elements[0].integer == static_cast<long long>(i + 1));
    CHECK(e.elements[1].value == "v" + std::to_string(i + 1));
    CHECK(e.elements[2].elements.at(0).integer == static_cast<long long>(i + 1));
  }
}

// docs/invalidation.md, "Ordering without a shared clock": the slot's clock
// key, not the server's TIME, orders fills and invalidations.
TEST_CASE("store: after a failover to a server whose clock is 10 minutes behind, an invalidation still beats a value "
          "the old master stored, because the slot's clock came over with it") {
  Fixture f("clock");
  const std::string lease = f.keys[0] + ":lease";
  const std::string clock = f.layout.clock(f.keys[0]);
  // What a master 10 minutes ahead leaves behind on its replica: its clock,
  // and a value made by it.
  const std::uint64_t ahead = unix_us() + 600'000'000;
  Services::get().redis_cli("SET " + clock + " " + std::to_string(ahead));
  cache::Begin b = run(f, f.store->begin_fill(f.layout, f.keys, lease, "tok", 1000, unix_us()));
  REQUIRE(b.ok);
  CHECK(b.start_us > ahead);  // counted on from the clock, not from TIME
  cache::ValueHeader h;
  h.created_us = b.start_us;
  h.soft_expiry_us = b.start_us + 60'000'000;
  std::string bytes = cache::encode_value(h, "{\"v\":1}");
  REQUIRE(run(f, f.store->commit(f.layout, f.keys, lease, "tok", b, 60'000'000, bytes, 60000)) == cache::Commit::stored);
  REQUIRE(run(f, f.store->lookup(f.keys, unix_us())).status == cache::Lookup::Status::fresh);
  // The invalidation runs where TIME is 10 minutes before the value.
  std::vector<std::string> wm(1, f.keys[1]);
  auto at = run(f, f.store->raise_watermarks(f.layout, wm, 60000, "", 0));
  REQUIRE(at);
  CHECK(*at > b.start_us);
  CHECK(run(f, f.store->lookup(f.keys, unix_us())).status == cache::Lookup::Status::miss);
}

TEST_CASE("store: a fill whose begin this server never saw (its clock is behind the fill's start), or whose "
          "connection changed since the begin, is not stored") {
  Fixture f("lostbegin");
  const std::string lease = f.keys[0] + ":lease";
  const std::string clock = f.layout.clock(f.keys[0]);
  std::string bytes = cache::encode_value(cache::ValueHeader{}, "{}");
  // The begin's write of the clock is lost (a failover to a replica that
  // did not have it yet): the server's clock is behind the fill's start.
  cache::Begin b = run(f, f.store->begin_fill(f.layout, f.keys, lease, "tok", 1000, unix_us()));
  REQUIRE(b.ok);
  Services::get().redis_cli("SET " + clock + " " + std::to_string(b.start_us - 1));
  CHECK(run(f, f.store->commit(f.layout, f.keys, lease, "tok", b, 60'000'000, bytes, 60000)) ==
        cache::Commit::invalidated);
  CHECK(Services::get().redis_cli("EXISTS " + f.keys[0]).find('1') == std::string::npos);
  // The connection is made anew between the begin and the commit.
  b = run(f, f.store->begin_fill(f.layout, f.keys, lease, "tok", 1000, unix_us()));
  REQUIRE(b.ok);
  net::post(f.io, [c = f.conn] { c->reconnect("test"); });
  f.io.restart();
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while ((f.conn->session() == 0 || f.conn->session() == b.session) && std::chrono::steady_clock::now() < give_up) {
    f.io.restart();
    f.io.run_one_for(std::chrono::milliseconds(50));
    if (f.conn->state() != redis::State::connected) {
      std::vector<std::string> one(1, f.keys[1]);
      (void)run(f, f.store->lookup(one, unix_us()));  // connects again
    }
  }
  REQUIRE(f.conn->session() != 0);
  CHECK(f.conn->session() != b.session);
  CHECK(run(f, f.store->commit(f.layout, f.keys, lease, "tok", b, 60'000'000, bytes, 60000)) ==
        cache::Commit::invalidated);
  CHECK(Services::get().redis_cli("EXISTS " + f.keys[0]).find('1') == std::string::npos);
  // Over the begin's own connection, with its clock, it stores.
  b = run(f, f.store->begin_fill(f.layout, f.keys, lease, "tok", 1000, unix_us()));
  CHECK(run(f, f.store->commit(f.layout, f.keys, lease, "tok", b, 60'000'000, bytes, 60000)) == cache::Commit::stored);
}

TEST_CASE("store: a cold begin takes the lease and moves the clock only where no value (or a tombstone) is, and "
          "is otherwise just a look") {
  Fixture f("cold");
  const std::string lease = f.keys[0] + ":lease";
  const std::string clock = f.layout.clock(f.keys[0]);
  Services::get().redis_cli("DEL " + lease);
  auto cold_begin = [&] { return run(f, f.store->begin_fill(f.layout, f.keys, lease, "tok", 60000, unix_us(), true)); };
  // Nothing there: a real begin (lease, clock).
  cache::Begin absent = cold_begin();
  REQUIRE(absent.ok);
  CHECK(absent.leased);
  CHECK_FALSE(absent.only_looked);
  CHECK(Services::get().redis_cli("GET " + clock) == std::to_string(absent.start_us));
  cache::ValueHeader h;
  h.created_us = absent.start_us;
  h.soft_expiry_us = unix_us() + 60'000'000;
  std::string bytes = cache::encode_value(h, R"({"v":1})");
  REQUIRE(run(f, f.store->commit(f.layout, f.keys, lease, "tok", absent, 60'000'000, bytes, 60000)) ==
          cache::Commit::stored);
  // A value there: only a look that finds it; no lease, the clock unmoved.
  const std::string clock_before = Services::get().redis_cli("GET " + clock);
  cache::Begin found = cold_begin();
  REQUIRE(found.ok);
  CHECK(found.only_looked);
  CHECK_FALSE(found.leased);
  CHECK(found.lookup.status == cache::Lookup::Status::fresh);
  CHECK(found.lookup.body == R"({"v":1})");
  CHECK(Services::get().redis_cli("EXISTS " + lease) == "0");
  CHECK(Services::get().redis_cli("GET " + clock) == clock_before);
  // A tombstone there: a real begin again, after the tombstone's time.
  auto at = run(f, f.store->tombstone(f.layout, f.keys[0], 60000, "", 0));
  REQUIRE(at);
  cache::Begin after = cold_begin();
  REQUIRE(after.ok);
  CHECK(after.leased);
  CHECK_FALSE(after.only_looked);
  CHECK(after.lookup.status == cache::Lookup::Status::miss);
  CHECK(after.start_us > *at);
  // A begin that is not cold takes the lease whatever is there (here: it is held).
  cache::Begin plain = run(f, f.store->begin_fill(f.layout, f.keys, lease, "other", 60000, unix_us()));
  CHECK_FALSE(plain.only_looked);
  CHECK_FALSE(plain.leased);
}

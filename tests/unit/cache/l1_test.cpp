// L1 logic with a fake clock: bounds, S3-FIFO scan resistance, coherence
// (invalidation records, tickets, disable/enable) and the channel format.
#include <catch2/catch.hpp>

#include <thread>

#include "sidecache/cache/l1.hpp"

using namespace sidecache::cache;
using namespace std::chrono_literals;
using Clock = NearCache::Clock;

namespace {

// keys[0]: the value key; then its tenant, entity-in-tenant and entity watermarks.
std::vector<std::string> keys_of(const std::string& tenant, int id) {
  return {"sc:t:" + tenant + ":user:h:" + std::to_string(id), "sc:wm:t:" + tenant, "sc:wm:t:" + tenant + ":user",
          "sc:wm:e:user"};
}

ValueHeader header(std::uint64_t created, std::uint64_t soft = ~0ull) {
  ValueHeader h;
  h.created_us = created;
  h.soft_expiry_us = soft;
  return h;
}

struct Fixture {
  NearCache l1{1 << 20, std::chrono::milliseconds(60000)};
  Clock::time_point now = Clock::now();
  Fixture() { l1.enable(); }
  bool put(const std::vector<std::string>& k, std::uint64_t created, const std::string& body,
           std::chrono::milliseconds life = 2s) {
    return l1.put(l1.ticket(), k, header(created), body, now + life, now);
  }
  std::optional<std::string> get(const std::vector<std::string>& k) {
    ValueHeader h;
    std::string body;
    if (!l1.get(k[0], now, h, body)) return std::nullopt;
    return body;
  }
};

}  // namespace

TEST_CASE("l1: a stored copy is served until its life ends") {
  Fixture f;
  auto k = keys_of("A", 1);
  REQUIRE(f.put(k, 100, R"({"id":1})"));
  CHECK(f.get(k) == R"({"id":1})");
  CHECK_FALSE(f.get(keys_of("B", 1)));  // another tenant's key is another entry
  f.now += 1999ms;
  CHECK(f.get(k));
  f.now += 1ms;
  CHECK_FALSE(f.get(k));
  CHECK(f.l1.stats().entries == 0);
}

TEST_CASE("l1: every invalidation scope drops exactly what it covers") {
  Fixture f;
  auto a1 = keys_of("A", 1), a2 = keys_of("A", 2), b1 = keys_of("B", 1);
  for (auto* k : {&a1, &a2, &b1}) REQUIRE(f.put(*k, 100, "v"));

  SECTION("a tombstone drops its key at once") {
    f.l1.invalidate(a1[0], 150, f.now);
    CHECK(f.l1.stats().entries == 2);
    CHECK_FALSE(f.get(a1));
    CHECK(f.get(a2));
    CHECK(f.get(b1));
  }
  SECTION("a tenant watermark drops that tenant only") {
    f.l1.invalidate("sc:wm:t:A", 150, f.now);
    CHECK_FALSE(f.get(a1));
    CHECK_FALSE(f.get(a2));
    CHECK(f.get(b1));
  }
  SECTION("an entity watermark drops it for every tenant") {
    f.l1.invalidate("sc:wm:e:user", 150, f.now);
    CHECK_FALSE(f.get(a1));
    CHECK_FALSE(f.get(b1));
  }
  SECTION("an invalidation older than the copy leaves it") {
    f.l1.invalidate("sc:wm:t:A", 99, f.now);
    CHECK(f.get(a1));
    SECTION("ties go to the invalidation") {
      f.l1.invalidate("sc:wm:t:A", 100, f.now);
      CHECK_FALSE(f.get(a1));
    }
  }
}

TEST_CASE("l1: a copy read before an invalidation it has not heard of yet is refused") {
  Fixture f;
  auto k = keys_of("A", 1);
  f.l1.invalidate("sc:wm:t:A:user", 200, f.now);
  CHECK_FALSE(f.put(k, 150, "old"));  // the fill began before the invalidation: never stored
  CHECK_FALSE(f.get(k));
  CHECK(f.put(k, 250, "new"));
  CHECK(f.get(k) == "new");
  CHECK_FALSE(f.put(k, 240, "older"));  // never replaces a newer copy
  CHECK(f.get(k) == "new");
}

TEST_CASE("l1: losing the invalidation feed flushes and refuses what was read before") {
  Fixture f;
  auto k = keys_of("A", 1);
  NearCache::Ticket before = f.l1.ticket();
  REQUIRE(f.put(k, 100, "v"));
  f.l1.disable();
  CHECK_FALSE(f.get(k));
  CHECK(f.l1.stats().entries == 0);
  CHECK_FALSE(f.l1.put(f.l1.ticket(), k, header(100), "v", f.now + 1s, f.now));  // off: nothing is stored
  f.l1.enable();
  CHECK_FALSE(f.get(k));
  // A read that began while the feed was down may have missed invalidations.
  CHECK_FALSE(f.l1.put(before, k, header(100), "v", f.now + 1s, f.now));
  CHECK(f.l1.put(f.l1.ticket(), k, header(100), "v", f.now + 1s, f.now));
}

TEST_CASE("l1: the byte bound holds and hot keys survive a scan (S3-FIFO)") {
  NearCache l1(256 << 10, std::chrono::milliseconds(60000));
  l1.enable();
  auto now = Clock::now();
  std::string body(500, 'x');
  auto put = [&](const std::string& tenant, int id) {
    l1.put(l1.ticket(), keys_of(tenant, id), header(1), body, now + 10s, now);
  };
  auto hit = [&](const std::string& tenant, int id) {
    ValueHeader h;
    std::string b;
    return l1.get(keys_of(tenant, id)[0], now, h, b);
  };
  // 50 hot keys, read several times each.
  for (int i = 0; i < 50; ++i) put("hot", i);
  for (int round = 0; round < 3; ++round)
    for (int i = 0; i < 50; ++i) CHECK(hit("hot", i));
  // A scan of 5,000 keys read once: far more than fits.
  for (int i = 0; i < 5000; ++i) {
    put("scan", i);
    if (i % 10 == 0) hit("hot", i / 10 % 50);  // the hot set stays in use
  }
  auto st = l1.stats();
  CHECK(st.bytes <= l1.max_bytes());
  CHECK(st.evictions > 4000);
  int hot_left = 0;
  for (int i = 0; i < 50; ++i) hot_left += hit("hot", i);
  CHECK(hot_left == 50);
  int scan_left = 0;
  for (int i = 0; i < 5000; ++i) scan_left += hit("scan", i);
  CHECK(scan_left < 500);
}

TEST_CASE("l1: concurrent readers, writers and invalidations never serve an invalidated copy") {
  NearCache l1(4 << 20, std::chrono::milliseconds(60000));
  l1.enable();
  std::atomic<std::uint64_t> clock{1000};
  std::atomic<bool> stop{false};
  std::atomic<long> wrong{0}, served{0};
  // The latest invalidation of each tenant's watermark, as the writer published it.
  std::array<std::atomic<std::uint64_t>, 4> wm{};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        int tenant = (i / 8 + t) % 4, id = (i / 8) % 64;  // each key read 8 times in a row
        auto k = keys_of(std::to_string(tenant), id);
        auto now = Clock::now();
        ValueHeader h;
        std::string b;
        std::uint64_t before = wm[static_cast<std::size_t>(tenant)].load();
        if (l1.get(k[0], now, h, b)) {
          ++served;
          if (h.created_us <= before) ++wrong;  // invalidated before this read began
        } else {
          auto ticket = l1.ticket();
          std::uint64_t created = clock.fetch_add(1);
          l1.put(ticket, k, header(created), "v", now + 5s, now);
        }
      }
    });
  threads.emplace_back([&] {
    // Paced, so that readers get copies served between invalidations even
    // on a slow (sanitized) build.
    for (int i = 0; i < 4000 && (i < 400 || served < 1000); ++i) {
      int tenant = i % 4;
      std::uint64_t at = clock.fetch_add(1);
      l1.invalidate("sc:wm:t:" + std::to_string(tenant), at, Clock::now());
      wm[static_cast<std::size_t>(tenant)] = at;
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    stop = true;
  });
  for (auto& th : threads) th.join();
  INFO("served " << served << " copies");
  CHECK(served > 0);
  CHECK(wrong == 0);
}

TEST_CASE("l1: channel messages") {
  CHECK(l1_channel("sc:") == "sc:l1");
  auto m = parse_l1_message("1700000000000001\nsc:wm:t:A\nsc:wm:t:A:user");
  REQUIRE(m);
  CHECK(m->at_us == 1700000000000001ull);
  REQUIRE(m->keys.size() == 2);
  CHECK(m->keys[1] == "sc:wm:t:A:user");
  CHECK_FALSE(parse_l1_message(""));
  CHECK_FALSE(parse_l1_message("123"));
  CHECK_FALSE(parse_l1_message("12x\nk"));
  CHECK_FALSE(parse_l1_message("12\n"));
  CHECK_FALSE(parse_l1_message("12\nk\n"));
  CHECK_FALSE(parse_l1_message("12\nk\n\nj"));
  CHECK_FALSE(parse_l1_message("123456789012345678901\nk"));
}

TEST_CASE("l1: an invalidation that could not reach Redis holds its keys until the replay releases them") {
  Fixture f;
  auto k = keys_of("A", 1);
  REQUIRE(f.put(k, 100, "old"));
  f.l1.hold(k[1], f.now);  // the tenant, while Redis was away
  CHECK_FALSE(f.get(k));
  CHECK_FALSE(f.put(k, 5000, "filled while held"));  // whatever its time
  // The replay reached Redis at 4000: copies from before stay out, later ones are kept again.
  f.l1.release(k[1], 4000, f.now);
  CHECK_FALSE(f.put(k, 3999, "older than the replay"));
  CHECK(f.put(k, 4001, "newer"));
  CHECK(f.get(k) == "newer");
}

TEST_CASE("l1: two holds of one key need two releases") {
  Fixture f;
  auto k = keys_of("A", 1);
  f.l1.hold(k[0], f.now);
  f.l1.hold(k[0], f.now);
  f.l1.release(k[0], 10, f.now);
  CHECK_FALSE(f.put(k, 20, "x"));
  f.l1.release(k[0], 10, f.now);
  CHECK(f.put(k, 20, "x"));
}

TEST_CASE("l1: records age out on a timer (prune), also a hold that no replay released") {
  Fixture f;
  auto k = keys_of("A", 1);
  f.l1.hold(k[2], f.now);
  f.l1.invalidate(k[3], 50, f.now);
  CHECK(f.l1.stats().invalidation_records == 2);
  f.now += 59s;
  f.l1.prune(f.now);
  CHECK(f.l1.stats().invalidation_records == 2);
  f.now += 2s;
  f.l1.prune(f.now);
  CHECK(f.l1.stats().invalidation_records == 0);
  CHECK(f.put(k, 20, "served again"));
}

TEST_CASE("L1 max_tenant_share: a tenant filling L1 evicts only its own copies, and another tenant's stay") {
  const std::size_t max = 4 << 20;
  NearCache l1(max, std::chrono::milliseconds(60000), 0.25);
  l1.enable();
  auto now = Clock::now();
  const std::string body(1000, 'x');
  // The quiet tenant's copies first, then a noisy tenant writes 10 MiB.
  for (int i = 0; i < 200; ++i) REQUIRE(l1.put(l1.ticket(), keys_of("quiet", i), header(1), body, now + 10s, now, "quiet"));
  std::size_t quiet_before = l1.tenant_bytes("quiet");
  for (int i = 0; i < 10000; ++i) l1.put(l1.ticket(), keys_of("noisy", i), header(1), body, now + 10s, now, "noisy");
  CHECK(l1.tenant_bytes("noisy") <= max / 4);
  CHECK(l1.tenant_bytes("noisy") > max / 8);  // it does use its share
  CHECK(l1.tenant_bytes("quiet") == quiet_before);
  ValueHeader h;
  std::string got;
  for (int i = 0; i < 200; ++i) CHECK(l1.get(keys_of("quiet", i)[0], now, h, got));
  // The noisy tenant keeps its newest copies, not its oldest.
  CHECK(l1.get(keys_of("noisy", 9999)[0], now, h, got));
  CHECK_FALSE(l1.get(keys_of("noisy", 0)[0], now, h, got));
  // The books balance once everything is gone.
  l1.disable();
  CHECK(l1.tenant_bytes("noisy") == 0);
  CHECK(l1.stats().bytes == 0);
}

TEST_CASE("L1 without max_tenant_share: one tenant may take all of it (the bound is what keeps the other's copies)") {
  const std::size_t max = 4 << 20;
  NearCache l1(max, std::chrono::milliseconds(60000));
  l1.enable();
  auto now = Clock::now();
  const std::string body(1000, 'x');
  for (int i = 0; i < 200; ++i) l1.put(l1.ticket(), keys_of("quiet", i), header(1), body, now + 10s, now, "quiet");
  for (int i = 0; i < 10000; ++i) l1.put(l1.ticket(), keys_of("noisy", i), header(1), body, now + 10s, now, "noisy");
  CHECK(l1.tenant_bytes("noisy") > max / 2);
  CHECK(l1.tenant_bytes("quiet") == 0);
}

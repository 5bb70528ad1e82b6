#include <catch2/catch.hpp>

#include "sidecache/cache/redis_store.hpp"

using namespace sidecache;
using redis::Reply;

namespace {

Reply bulk(const std::string& s, std::size_t split = 0) {
  Reply r;
  r.status = Reply::Status::value;
  std::copy(s.begin(), s.begin() + static_cast<long>(split), r.head.begin());
  r.head_len = split;
  r.value = s.substr(split);
  return r;
}

Reply nil() {
  Reply r;
  r.status = Reply::Status::nil;
  return r;
}

Reply array(std::vector<Reply> elements) {
  Reply r;
  r.status = Reply::Status::ok;
  r.elements = std::move(elements);
  return r;
}

std::string value(std::uint64_t created, std::uint64_t expiry, std::uint8_t flags = 0, const std::string& body = "{}") {
  cache::ValueHeader h;
  h.created_us = created;
  h.soft_expiry_us = expiry;
  h.flags = flags;
  return cache::encode_value(h, body);
}

}  // namespace

TEST_CASE("a value newer than every watermark is fresh and keeps its body") {
  auto l = cache::interpret(array({bulk(value(1000, 9000, 0, R"({"a":1})"), 24), bulk("500"), nil(), bulk("999")}), 4, 2000);
  CHECK(l.status == cache::Lookup::Status::fresh);
  CHECK(l.body == R"({"a":1})");
  CHECK(l.seen_watermark_us == 999);
}

TEST_CASE("any covering watermark at or after the fill's start invalidates the value") {
  for (std::size_t i = 1; i < 4; ++i) {
    std::vector<Reply> e{bulk(value(1000, 9000), 24), nil(), nil(), nil()};
    e[i] = bulk("1000");
    auto l = cache::interpret(array(std::move(e)), 4, 2000);
    CHECK(l.status == cache::Lookup::Status::miss);
    CHECK(l.seen_watermark_us == 1000);
  }
}

TEST_CASE("a tombstone is a miss and counts as a seen invalidation") {
  auto l = cache::interpret(array({bulk(value(1500, 0, cache::ValueHeader::kTombstone, ""), 24), nil(), nil(), bulk("10")}), 4, 2000);
  CHECK(l.status == cache::Lookup::Status::miss);
  CHECK(l.seen_watermark_us == 1500);
}

TEST_CASE("an expired value keeps its body (it may be served stale), an invalidated one does not") {
  auto l = cache::interpret(array({bulk(value(1000, 1500, 0, "[1]"), 24), nil()}), 2, 2000);
  CHECK(l.status == cache::Lookup::Status::expired);
  CHECK(l.body == "[1]");
  CHECK(cache::interpret(array({bulk(value(1000, 1500), 24), bulk("1200")}), 2, 2000).status == cache::Lookup::Status::miss);
}

TEST_CASE("absent and foreign values are misses, failures are errors") {
  CHECK(cache::interpret(array({nil(), nil()}), 2, 2000).status == cache::Lookup::Status::miss);
  CHECK(cache::interpret(array({bulk("plain text written by someone else", 24), nil()}), 2, 2000).status ==
        cache::Lookup::Status::miss);
  Reply timeout;
  timeout.status = Reply::Status::timeout;
  CHECK(cache::interpret(timeout, 2, 2000).status == cache::Lookup::Status::error);
  CHECK(cache::interpret(array({nil()}), 2, 2000).status == cache::Lookup::Status::error);
}

TEST_CASE("scripts are addressed by the SHA-1 of their body") {
  CHECK(redis::Script("return 1").sha1 == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
}

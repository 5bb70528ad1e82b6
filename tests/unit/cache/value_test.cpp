#include <catch2/catch.hpp>

#include "sidecache/cache/value.hpp"

using namespace sidecache::cache;

TEST_CASE("the value header round-trips and the body follows it untouched") {
  ValueHeader h;
  h.flags = ValueHeader::kNegative;
  h.fill_us = 123456;
  h.created_us = 1767225600123456ULL;
  h.soft_expiry_us = 1767225900123456ULL;
  std::string body = R"({"a":"\u0000 ☢"})";
  std::string bytes = encode_value(h, body);
  REQUIRE(bytes.size() == kValueHeaderSize + body.size());
  auto d = decode_header(bytes);
  REQUIRE(d);
  CHECK(d->negative());
  CHECK_FALSE(d->tombstone());
  CHECK(d->fill_us == 123456);
  CHECK(d->created_us == 1767225600123456ULL);
  CHECK(d->soft_expiry_us == 1767225900123456ULL);
  CHECK(bytes.substr(kValueHeaderSize) == body);
}

TEST_CASE("the header layout is fixed little-endian (the Lua scripts read it)") {
  ValueHeader h;
  h.fill_us = 0x01020304;
  h.created_us = 0x1112131415161718ULL;
  std::string b = encode_value(h, "");
  CHECK(b.substr(0, 4) == std::string("SC\x01\x00", 4));
  CHECK(b.substr(4, 4) == "\x04\x03\x02\x01");
  CHECK(b.substr(8, 8) == "\x18\x17\x16\x15\x14\x13\x12\x11");
}

TEST_CASE("foreign or truncated bytes are not a value") {
  CHECK_FALSE(decode_header(""));
  CHECK_FALSE(decode_header("{\"json\":\"written by someone else\"}"));
  std::string b = encode_value({}, "x");
  CHECK_FALSE(decode_header(std::string_view(b).substr(0, kValueHeaderSize - 1)));
  b[2] = 9;  // another version
  CHECK_FALSE(decode_header(b));
}

TEST_CASE("judging a value: fresh, expired, invalidated") {
  ValueHeader h;
  h.created_us = 1000;
  h.soft_expiry_us = 5000;
  CHECK(judge(h, 0, 2000) == Verdict::fresh);
  CHECK(judge(h, 999, 2000) == Verdict::fresh);          // invalidated before the fill began
  CHECK(judge(h, 1000, 2000) == Verdict::invalidated);   // the same microsecond: the invalidation wins
  CHECK(judge(h, 1500, 2000) == Verdict::invalidated);   // invalidated while or after it was filled
  CHECK(judge(h, 0, 5000) == Verdict::expired);
  CHECK(judge(h, 2000, 9000) == Verdict::invalidated);   // invalidation is reported before expiry
  ValueHeader tomb;
  tomb.flags = ValueHeader::kTombstone;
  tomb.created_us = 100;
  tomb.soft_expiry_us = 1u << 30;
  CHECK(judge(tomb, 0, 200) == Verdict::invalidated);
}

TEST_CASE("a waiter takes a shared result only if its read began after what the waiter saw") {
  CHECK(reflects(2000, 0));      // saw no invalidation
  CHECK(reflects(2000, 1999));
  CHECK_FALSE(reflects(2000, 2000));
  CHECK_FALSE(reflects(1000, 1500));  // the leader read before an invalidation this waiter saw
}

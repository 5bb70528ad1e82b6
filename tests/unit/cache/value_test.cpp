#include <catch2/catch.hpp>

#include "sidecache/cache/value.hpp"

using namespace sidecache::cache;

TEST_CASE("the value header round-trips and the body follows it untouched") {
  ValueHeader h;
  h.flags = ValueHeader::kNegative;
  h.fill_us = 123456;
  h.created_ms = 1767225600123ULL;
  h.soft_expiry_ms = 1767225900123ULL;
  std::string body = R"({"a":"\u0000 ☢"})";
  std::string bytes = encode_value(h, body);
  REQUIRE(bytes.size() == kValueHeaderSize + body.size());
  auto d = decode_header(bytes);
  REQUIRE(d);
  CHECK(d->negative());
  CHECK(d->fill_us == 123456);
  CHECK(d->created_ms == 1767225600123ULL);
  CHECK(d->soft_expiry_ms == 1767225900123ULL);
  CHECK(bytes.substr(kValueHeaderSize) == body);
}

TEST_CASE("the header layout is fixed little-endian") {
  ValueHeader h;
  h.fill_us = 0x01020304;
  h.created_ms = 0x1112131415161718ULL;
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

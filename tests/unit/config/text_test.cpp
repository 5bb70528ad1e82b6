#include <catch2/catch.hpp>

#include "sidecache/config/text.hpp"

using namespace sidecache;

TEST_CASE("text: percent-decoding, with and without '+' as a space") {
  std::string out;
  CHECK(config::percent_decode("a%20b+c", out, true));
  CHECK(out == "a b c");
  CHECK(config::percent_decode("p%40ss+word", out, false));
  CHECK(out == "p@ss+word");
  CHECK_FALSE(config::percent_decode("bad%2", out, true));
  CHECK_FALSE(config::percent_decode("bad%zz", out, true));
}

TEST_CASE("text: UTF-8 sequences, lengths and repair") {
  std::size_t n = 0;
  CHECK(config::utf8_length("h\xC3\xA9llo \xF0\x9F\x98\x80", n));
  CHECK(n == 7);
  CHECK_FALSE(config::utf8_length("\xC0\xAF", n));      // overlong
  CHECK_FALSE(config::utf8_length("\xED\xA0\x80", n));  // surrogate
  CHECK_FALSE(config::utf8_length("\xE2\x82", n));      // truncated
  CHECK(config::valid_utf8("a\xFF" "b") == "a\xEF\xBF\xBD" "b");
  CHECK(config::valid_utf8("\xC3\xA9") == "\xC3\xA9");
}

TEST_CASE("text: hex") {
  std::string s;
  config::append_hex(s, 0xabcdef, 8);
  CHECK(s == "00abcdef");
  s.clear();
  config::append_hex(s, 0x0123456789abcdefULL);
  CHECK(s == "0123456789abcdef");
}

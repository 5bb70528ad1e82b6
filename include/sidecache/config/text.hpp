#pragma once
// Small text helpers every module shares: percent-decoding, UTF-8 decoding
// and lower-case hex. Pure; unit-tested in tests/unit/config/text_test.cpp.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sidecache::config {

// The value of one hex digit (either case), or -1.
int hex_value(char c);

// Decodes %XX escapes (and '+' as a space when `plus_is_space`); false on a
// malformed escape. The URL query string and redis:// credentials share it.
bool percent_decode(std::string_view in, std::string& out, bool plus_is_space);

// Reads one UTF-8 sequence at s[i]: its length in bytes, or 0 when it is not
// a valid sequence (truncated, overlong, a surrogate, above U+10FFFF).
std::size_t utf8_sequence(std::string_view s, std::size_t i);

// Code points in `s`; false on invalid UTF-8.
bool utf8_length(std::string_view s, std::size_t& n);

// `s` with every byte that does not start a valid sequence replaced by
// U+FFFD (JSON bodies must be UTF-8).
std::string valid_utf8(std::string_view s);

// Appends the `digits` low hex digits of v, most significant first.
void append_hex(std::string& out, std::uint64_t v, int digits = 16);

}  // namespace sidecache::config

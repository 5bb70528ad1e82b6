#include <catch2/catch.hpp>

#include "sidecache/config/duration.hpp"

using namespace sidecache::config;
using namespace std::chrono;

TEST_CASE("durations parse with their units") {
  CHECK(parse_duration("50ms") == microseconds(50000));
  CHECK(parse_duration("2s") == seconds(2));
  CHECK(parse_duration("15m") == minutes(15));
  CHECK(parse_duration("1h") == hours(1));
  CHECK(parse_duration("1h30m") == minutes(90));
  CHECK(parse_duration("250us") == microseconds(250));
  CHECK(parse_duration("0s") == microseconds(0));
}

TEST_CASE("durations without a unit or with junk are refused") {
  for (const char* bad : {"", "5", "ms", "5 s", "-5s", "5x", "1.5s", "99999999999999999999h"})
    CHECK_FALSE(parse_duration(bad).has_value());
}

TEST_CASE("durations format back into the config syntax") {
  CHECK(format_duration(minutes(15)) == "15m");
  CHECK(format_duration(milliseconds(1500)) == "1500ms");
  CHECK(format_duration(hours(2)) == "2h");
  CHECK(parse_duration(format_duration(microseconds(123456789))) == microseconds(123456789));
}

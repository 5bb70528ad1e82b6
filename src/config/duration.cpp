#include "sidecache/config/duration.hpp"

#include <cstdint>

namespace sidecache::config {

std::optional<std::chrono::microseconds> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::int64_t total_us = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::int64_t n = 0;
    std::size_t digits = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (n > (INT64_MAX - 9) / 10) return std::nullopt;
      n = n * 10 + (text[i] - '0');
      ++i;
      ++digits;
    }
    if (digits == 0) return std::nullopt;
    std::size_t unit_start = i;
    while (i < text.size() && ((text[i] >= 'a' && text[i] <= 'z'))) ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    std::int64_t mult;
    if (unit == "us") mult = 1;
    else if (unit == "ms") mult = 1000;
    else if (unit == "s") mult = 1000 * 1000;
    else if (unit == "m") mult = 60LL * 1000 * 1000;
    else if (unit == "h") mult = 3600LL * 1000 * 1000;
    else if (unit == "d") mult = 86400LL * 1000 * 1000;
    else return std::nullopt;
    if (n > INT64_MAX / mult) return std::nullopt;
    total_us += n * mult;
    if (total_us < 0) return std::nullopt;
  }
  return std::chrono::microseconds(total_us);
}

std::string format_duration(std::chrono::microseconds d) {
  std::int64_t us = d.count();
  struct Unit { std::int64_t size; const char* name; };
  static constexpr Unit units[] = {{86400LL * 1000 * 1000, "d"}, {3600LL * 1000 * 1000, "h"},
                                   {60LL * 1000 * 1000, "m"},    {1000 * 1000, "s"},
                                   {1000, "ms"},                  {1, "us"}};
  if (us == 0) return "0s";
  for (const auto& u : units) {
    if (us % u.size == 0) return std::to_string(us / u.size) + u.name;
  }
  return std::to_string(us) + "us";
}

}  // namespace sidecache::config

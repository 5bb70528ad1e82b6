#pragma once
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace sidecache::config {

// Parses durations written like "50ms", "2s", "15m", "1h", "1h30m" or "250us".
// Returns nullopt on anything else (a bare number has no unit and is refused).
std::optional<std::chrono::microseconds> parse_duration(std::string_view text);

// Formats a duration the way the config accepts it ("15m", "1500ms").
std::string format_duration(std::chrono::microseconds d);

}  // namespace sidecache::config

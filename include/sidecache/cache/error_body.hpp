#pragma once
// The JSON error body every non-2xx answer uses:
// {"error":code,<extra fields>,"message":message}. Request bytes end up in
// messages, so every string is made valid UTF-8 first.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sidecache::cache {

std::string error_body(std::string_view code, std::string_view message,
                       const std::vector<std::pair<std::string, std::string>>& extra = {});

}  // namespace sidecache::cache

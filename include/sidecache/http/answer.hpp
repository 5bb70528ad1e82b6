#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sidecache::http {

// A response as the application logic sees it: no sockets, no Beast types.
// The server turns it into bytes; tests compare it directly.
struct Answer {
  unsigned status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type/Length
  bool close = false;  // close the connection after this answer
  std::string content_type = "application/json";

  const std::string* header(std::string_view name) const {
    for (const auto& [k, v] : headers)
      if (k == name) return &v;
    return nullptr;
  }
};

// Builds the JSON error body every non-2xx answer uses:
// {"error":code,"message":message,<extra fields>}.
Answer error_answer(unsigned status, std::string_view code, std::string_view message,
                    const std::vector<std::pair<std::string, std::string>>& extra = {});

}  // namespace sidecache::http

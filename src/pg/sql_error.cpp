// PostgreSQL errors about an entity's SQL, as one line of the entity's own.
#include <cstdlib>

#include "sidecache/pg/pool.hpp"

namespace sidecache::pg {

std::string one_line_sql_error(const std::string& what) {
  std::string out;
  auto add = [&out](const std::string& part) {
    if (!out.empty()) out.push_back(' ');
    out.append(part);
  };
  std::size_t start = 0;
  while (start < what.size()) {
    std::size_t end = what.find('\n', start);
    std::string line = what.substr(start, end == std::string::npos ? std::string::npos : end - start);
    start = end == std::string::npos ? what.size() : end + 1;
    // "LINE 3: ..." and the caret line under it: say which line of the
    // entity's SQL instead.
    if (line.rfind("LINE ", 0) == 0) {
      long n = std::strtol(line.c_str() + 5, nullptr, 10);
      if (n > 1) add("(at line " + std::to_string(n - 1) + " of the entity's SQL)");
      continue;
    }
    if (line.find_first_not_of(" ^") == std::string::npos) continue;
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
    if (!line.empty()) add(line);
  }
  return out;
}

}  // namespace sidecache::pg

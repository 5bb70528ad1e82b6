#pragma once
// The loader tests' main file and helpers (loader_test.cpp, tags_loader_test.cpp).
#include <optional>
#include <string>
#include <vector>

#include "../temp_dir.hpp"
#include "sidecache/config/config.hpp"

namespace sidecache::test::loader {

using namespace sidecache::config;

inline const char* kMain = R"(listen: 127.0.0.1:7070
workers: 2
key_prefix: "sc:"
tenant:
  param: org_id
  type: uuid
redis:
  url: redis://127.0.0.1:6379/0
  timeout: 50ms
postgres:
  dsn: "host=127.0.0.1 port=5432 dbname=app user=app"
  pool_size: 8
  queue_limit: 256
  statement_timeout: 2s
entities_dir: entities
defaults: { ttl: 5m, ttl_jitter: 10%, negative_ttl: 30s }
)";

inline EnvLookup no_env() {
  return [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
}

// Loads and returns the problems (empty when the config is valid).
inline std::vector<Problem> problems_of(const TempDir& d, const EnvLookup& env = no_env()) {
  try {
    load((d.path() / "sidecache.yaml").string(), env);
    return {};
  } catch (const LoadError& e) {
    return e.problems();
  }
}

inline bool has_problem(const std::vector<Problem>& ps, const std::string& file_suffix, int line, const std::string& text) {
  for (const auto& p : ps) {
    bool file_ok = p.file.size() >= file_suffix.size() &&
                   p.file.compare(p.file.size() - file_suffix.size(), file_suffix.size(), file_suffix) == 0;
    if (file_ok && (line == 0 || p.line == line) && p.message.find(text) != std::string::npos) return true;
  }
  return false;
}

inline std::string dump(const std::vector<Problem>& ps) {
  std::string s;
  for (const auto& p : ps) s += p.to_string() + "\n";
  return s;
}

}  // namespace sidecache::test::loader

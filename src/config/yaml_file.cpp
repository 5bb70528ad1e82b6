#include "yaml_file.hpp"

#include <cstring>
#include <fstream>
#include <sstream>

namespace sidecache::config::detail {

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

bool is_identifier(const std::string& s, bool lower_only) {
  if (s.empty() || s.size() > 63) return false;
  auto first_ok = [&](char c) { return (c >= 'a' && c <= 'z') || (!lower_only && c == '_'); };
  if (!first_ok(s[0])) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::optional<YAML::Node> load_yaml(const std::string& path, FileCtx& ctx, std::string* text_out) {
  std::ifstream in(path);
  if (!in) {
    ctx.error_file("cannot read file: " + std::string(std::strerror(errno)));
    return std::nullopt;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  if (text_out) *text_out = ss.str();
  try {
    YAML::Node root = YAML::Load(ss.str());
    if (!root.IsMap()) {
      ctx.error(root, root.IsNull() ? "file is empty; expected a mapping of keys" : "expected a mapping of keys at the top level");
      return std::nullopt;
    }
    return root;
  } catch (const YAML::Exception& e) {
    ctx.error(e.mark, "YAML syntax error: " + e.msg);
    return std::nullopt;
  }
}

void apply_string(FileCtx& ctx, const YAML::Node& parent, const char* key, std::string& target) {
  if (parent[key]) if (auto s = ctx.scalar(parent[key], key)) target = *s;
}

}  // namespace sidecache::config::detail

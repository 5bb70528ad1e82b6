#pragma once
// A YAML file being loaded: every problem is collected with its file, line
// and column, and the typed accessors say what is wrong and how to fix it.
// Private to the config module (the main file and the entity files share it).
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sidecache/config/config.hpp"
#include "sidecache/config/duration.hpp"
#include "value_parsers.hpp"

namespace sidecache::config::detail {

// Edit distance, for "did you mean" suggestions.
std::size_t edit_distance(const std::string& a, const std::string& b);
// [a-z_][a-z0-9_]* (lower_only: no leading _), at most 63 characters.
bool is_identifier(const std::string& s, bool lower_only);

class FileCtx {
 public:
  FileCtx(std::string file, std::vector<Problem>& problems, std::vector<Problem>* warnings = nullptr)
      : file_(std::move(file)), problems_(problems), warnings_(warnings) {}

  // Something that loads but is probably not what was meant.
  void warn(const YAML::Node& n, std::string msg) {
    const YAML::Mark m = n.Mark();
    if (warnings_) warnings_->push_back({file_, m.line >= 0 ? m.line + 1 : 0, m.column >= 0 ? m.column + 1 : 0, std::move(msg)});
  }

  const std::string& file() const { return file_; }

  void error(const YAML::Mark& m, std::string msg) {
    problems_.push_back({file_, m.line >= 0 ? m.line + 1 : 0, m.column >= 0 ? m.column + 1 : 0, std::move(msg)});
  }
  void error(const YAML::Node& n, std::string msg) { error(n.Mark(), std::move(msg)); }
  void error_line(int line, int column, std::string msg) {
    problems_.push_back({file_, line, column, std::move(msg)});
  }
  void error_file(std::string msg) { problems_.push_back({file_, 0, 0, std::move(msg)}); }

  // Refuses keys not in `allowed` and keys given twice.
  void check_keys(const YAML::Node& map, const std::vector<std::string>& allowed, const std::string& where) {
    std::set<std::string> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      if (!it->first.IsScalar()) {
        error(it->first, "keys in " + where + " must be plain names");
        continue;
      }
      std::string k = it->first.Scalar();
      if (!seen.insert(k).second) error(it->first, "key '" + k + "' is given twice in " + where + "; keep one");
      if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
      std::string msg = "unknown key '" + k + "' in " + where;
      std::string best;
      std::size_t best_d = 3;
      for (const auto& a : allowed) {
        std::size_t d = edit_distance(k, a);
        if (d < best_d) { best_d = d; best = a; }
      }
      if (!best.empty()) msg += "; did you mean '" + best + "'?";
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      msg += " (allowed: " + list + ")";
      error(it->first, msg);
    }
  }

  std::optional<std::string> scalar(const YAML::Node& n, const std::string& what) {
    if (!n.IsScalar()) {
      error(n, what + " must be a single value, not a " + (n.IsMap() ? "mapping" : n.IsSequence() ? "list" : "null"));
      return std::nullopt;
    }
    return n.Scalar();
  }

  std::optional<microseconds> duration(const YAML::Node& n, const std::string& what, bool positive = true) {
    microseconds out{};
    return checked(n, what, [&](const std::string& t) { return duration_value(what, t, positive, out); }) ? std::optional(out) : std::nullopt;
  }
  std::optional<long long> integer(const YAML::Node& n, const std::string& what, long long lo, long long hi) {
    long long out = 0;
    return checked(n, what, [&](const std::string& t) { return integer_value(what, t, lo, hi, out); }) ? std::optional(out) : std::nullopt;
  }
  // "10%" or a fraction like 0.1.
  std::optional<double> fraction(const YAML::Node& n, const std::string& what) {
    double out = 0;
    return checked(n, what, [&](const std::string& t) { return fraction_value(what, t, out); }) ? std::optional(out) : std::nullopt;
  }
  std::optional<ParamType> param_type(const YAML::Node& n, const std::string& what, bool allow_string) {
    ParamType out{};
    return checked(n, what, [&](const std::string& t) { return param_type_value(what, t, allow_string, out); }) ? std::optional(out) : std::nullopt;
  }

 private:
  // Runs `parse` on n's scalar; reports its message at n.
  template <class Parse>
  bool checked(const YAML::Node& n, const std::string& what, Parse parse) {
    auto s = scalar(n, what);
    if (!s) return false;
    std::string why = parse(*s);
    if (why.empty()) return true;
    error(n, why);
    return false;
  }

  std::string file_;
  std::vector<Problem>& problems_;
  std::vector<Problem>* warnings_;
};

// Reads and parses one YAML file whose top level must be a mapping.
std::optional<YAML::Node> load_yaml(const std::string& path, FileCtx& ctx, std::string* text_out);
// parent[key] as a string, if given.
void apply_string(FileCtx& ctx, const YAML::Node& parent, const char* key, std::string& target);

}  // namespace sidecache::config::detail

#pragma once
// The settings table: one row per setting of the main config file. The one
// table drives parsing (and the unknown-key suggestions), environment
// overrides, what a reload may change, and the generated reference in
// docs/configuration.md (a test checks the docs match it).
#include <functional>
#include <string>
#include <vector>

#include "sidecache/config/config.hpp"

namespace sidecache::config {

enum class OnReload {
  applies,  // a reload (SIGHUP) takes the new value for new requests
  restart,  // a reload keeps the running value and says so
};

struct Setting {
  std::string key;           // dotted path in the main file: "redis.breaker.failures"
  std::string type;          // what it takes, for the docs
  std::string default_text;  // for the docs; when `literal_default`, parsing it gives the built-in default (tested)
  bool literal_default = true;
  OnReload reload = OnReload::restart;
  bool list = false;  // takes a YAML sequence of strings; parse() gets them joined by '\n'
  std::string env;  // the environment variable that overrides it, or ""
  std::string doc;  // one line for the docs
  // Sets the value from its text; returns "" or what is wrong and how to
  // fix it. `dir` is the main file's folder (relative paths start there).
  std::function<std::string(Config& cfg, const std::string& text, const std::string& dir)> parse;
  std::function<bool(const Config& a, const Config& b)> same;  // both have the same value
  std::function<void(Config& to, const Config& from)> keep;    // to takes from's value
};

const std::vector<Setting>& settings();

// The mappings of the main file that hold settings ("redis", "redis.breaker",
// ...), parents before children.
std::vector<std::string> setting_sections();

// The keys directly under `section` ("" for the top level).
std::vector<std::string> setting_children(const std::string& section);

// The Markdown reference table docs/configuration.md carries.
std::string settings_markdown();

}  // namespace sidecache::config

namespace sidecache::config {

// A reload: `fresh` keeps `running`'s value of every setting that needs a
// restart; returns the keys of those whose value differed (to be named in
// a warning).
std::vector<std::string> keep_restart_settings(Config& fresh, const Config& running);

}  // namespace sidecache::config

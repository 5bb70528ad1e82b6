// Config loading: the main file, then one entity per file in entities_dir.
// Every problem is collected with its file and line; load() throws once, at
// the end, with all of them, so an operator fixes a config in one round.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "sidecache/config/config.hpp"
#include "sidecache/config/settings.hpp"
#include "entity_loader.hpp"
#include "setting_rows.hpp"
#include "yaml_file.hpp"

namespace sidecache::config {
namespace fs = std::filesystem;

const char* to_string(ParamType t) {
  switch (t) {
    case ParamType::uuid: return "uuid";
    case ParamType::integer: return "int";
    case ParamType::slug: return "slug";
    case ParamType::string: return "string";
  }
  return "?";
}

std::string Problem::to_string() const {
  std::string s = file;
  if (line > 0) {
    s += ':' + std::to_string(line);
    if (column > 0) s += ':' + std::to_string(column);
  }
  return s + ": " + message;
}

namespace {
std::string join_problems(const std::vector<Problem>& ps) {
  std::string s = "configuration has " + std::to_string(ps.size()) + " problem(s)";
  for (const auto& p : ps) s += "\n  " + p.to_string();
  return s;
}
}  // namespace

LoadError::LoadError(std::vector<Problem> problems)
    : std::runtime_error(join_problems(problems)), problems_(std::move(problems)) {}

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

bool Config::listens() const {
  for (const auto& e : entities)
    if (!e.invalidate_on.empty()) return true;
  return false;
}

const Entity* Config::find_entity(std::string_view name) const {
  for (const auto& e : entities)
    if (e.name == name) return &e;
  return nullptr;
}

namespace {

// root[a][b]... for a dotted key; an undefined node when a part is missing
// or a parent is not a mapping (that is reported once, for the parent).
YAML::Node node_at(const YAML::Node& root, const std::string& key) {
  YAML::Node n = root;
  std::size_t start = 0;
  for (;;) {
    std::size_t dot = key.find('.', start);
    std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!n.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    n.reset(n[part]);
    if (!n.IsDefined()) return n;
    if (dot == std::string::npos) return n;
    start = dot + 1;
  }
}

// "redis must be a mapping, like { url: redis://127.0.0.1:6379/0, timeout: 50ms }"
std::string mapping_hint(const std::string& section) {
  std::string hint;
  int n = 0;
  for (const auto& s : settings()) {
    if (n == 2 || s.key.compare(0, section.size() + 1, section + ".") != 0) continue;
    std::string child = s.key.substr(section.size() + 1);
    if (child.find('.') != std::string::npos || !s.literal_default || s.default_text.empty()) continue;
    hint += (n++ ? ", " : "") + child + ": " + s.default_text;
  }
  return section + " must be a mapping" + (hint.empty() ? "" : ", like { " + hint + " }");
}

}  // namespace

Config load(const std::string& path, const EnvLookup& env) {
  std::vector<Problem> problems;
  Config cfg;
  cfg.file = path;
  cfg.workers = std::max(1u, std::thread::hardware_concurrency());
  detail::FileCtx ctx(path, problems);
  auto root_opt = detail::load_yaml(path, ctx, nullptr);
  if (!root_opt) throw LoadError(std::move(problems));
  const YAML::Node& root = *root_opt;
  // (Absolute first: a bare file name has no parent, and an empty path
  // cannot be made absolute.)
  const std::string dir = fs::absolute(fs::path(path)).parent_path().string();

  // The shape: every mapping holds only the keys the settings table knows.
  ctx.check_keys(root, setting_children(""), "the main config");
  for (const auto& section : setting_sections()) {
    YAML::Node n = node_at(root, section);
    if (!n.IsDefined()) continue;
    if (!n.IsMap()) ctx.error(n, mapping_hint(section));
    else ctx.check_keys(n, setting_children(section), section);
  }
  // Every setting: the environment over the file over the built-in default.
  for (const auto& s : settings()) {
    if (auto v = s.env.empty() ? std::nullopt : env(s.env)) {
      std::string why = s.parse(cfg, *v, dir);
      if (!why.empty()) ctx.error_file("environment variable " + s.env + ": " + why);
      continue;
    }
    YAML::Node n = node_at(root, s.key);
    if (!n.IsDefined()) continue;
    if (s.list) {
      if (!n.IsSequence()) {
        ctx.error(n, s.key + " must be a list, like [\"host=replica-1 dbname=app\"]");
        continue;
      }
      std::string joined;
      bool ok = true;
      for (const auto& item : n) {
        auto t = ctx.scalar(item, s.key);
        if (!t) { ok = false; break; }
        if (t->find('\n') != std::string::npos) {
          ctx.error(item, s.key + ": an item must be on one line");
          ok = false;
          break;
        }
        joined += (joined.empty() ? "" : "\n") + *t;
      }
      if (!ok) continue;
      std::string why = s.parse(cfg, joined, dir);
      if (!why.empty()) ctx.error(n, why);
      continue;
    }
    auto text = ctx.scalar(n, s.key);
    if (!text) continue;
    std::string why = s.parse(cfg, *text, dir);
    if (!why.empty()) ctx.error(n, why);
  }
  std::string redis_where;
  if (std::string why = detail::redis_problem(cfg.redis, redis_where); !why.empty()) {
    YAML::Node at = node_at(root, redis_where);
    if (!at.IsDefined()) at.reset(node_at(root, "redis"));
    if (at.IsDefined()) ctx.error(at, why);
    else ctx.error_file(why);  // from the environment
  }
  if (cfg.redis.mode == RedisMode::cluster && cfg.key_prefix.find_first_of("{}") != std::string::npos) {
    // A brace in the prefix would make it every key's hash tag: one slot.
    YAML::Node at = node_at(root, "key_prefix");
    std::string why = "key_prefix must not contain '{' or '}' with redis.mode: cluster (it would put every key in one hash slot)";
    if (at.IsDefined()) ctx.error(at, why);
    else ctx.error_file(why);
  }
  if (cfg.postgres.dsn.empty())
    ctx.error(root, "no PostgreSQL connection: set postgres.dsn (e.g. \"host=127.0.0.1 dbname=app user=app\") or SIDECACHE_POSTGRES_DSN");

  // Entities: only once the defaults and the tenant are known.
  if (!root["entities_dir"]) {
    ctx.error(root, "missing key 'entities_dir': the folder (relative to this file) holding one *.yaml per entity");
  } else if (!cfg.entities_dir.empty()) {
    std::error_code ec;
    std::vector<fs::path> files;
    fs::directory_iterator it(cfg.entities_dir, ec);
    if (ec) {
      ctx.error(root["entities_dir"], "entities_dir '" + cfg.entities_dir + "' cannot be read: " + ec.message() +
                                          "; create it or fix the path (it is relative to this file)");
    } else {
      for (; it != fs::directory_iterator(); it.increment(ec)) {
        if (ec) break;
        auto ext = it->path().extension();
        if (ext == ".yaml" || ext == ".yml") files.push_back(it->path());
      }
      std::sort(files.begin(), files.end());
      if (files.empty())
        ctx.error(root["entities_dir"], "entities_dir '" + cfg.entities_dir + "' holds no *.yaml entity files; add at least one");
      std::map<std::string, std::string> names;
      for (const auto& f : files) detail::load_entity(f.string(), cfg, problems, cfg.entities, names, cfg.warnings);
    }
  }

  if (!problems.empty()) throw LoadError(std::move(problems));
  return cfg;
}

}  // namespace sidecache::config

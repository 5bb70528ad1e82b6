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
#include "sidecache/config/text.hpp"
#include "sidecache/config/duration.hpp"
#include "sidecache/config/sql_params.hpp"

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

// ---------------------------------------------------------------------------
// Problem collection and typed accessors with line numbers
// ---------------------------------------------------------------------------

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

class FileCtx {
 public:
  FileCtx(std::string file, std::vector<Problem>& problems) : file_(std::move(file)), problems_(problems) {}

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
    auto s = scalar(n, what);
    if (!s) return std::nullopt;
    auto d = parse_duration(*s);
    if (!d) {
      error(n, what + ": '" + *s + "' is not a duration; write it like 50ms, 2s, 15m or 1h");
      return std::nullopt;
    }
    if (positive && d->count() <= 0) {
      error(n, what + " must be greater than zero, got '" + *s + "'");
      return std::nullopt;
    }
    return d;
  }

  std::optional<long long> integer(const YAML::Node& n, const std::string& what, long long lo, long long hi) {
    auto s = scalar(n, what);
    if (!s) return std::nullopt;
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(s->c_str(), &end, 10);
    if (s->empty() || *end != '\0' || errno != 0) {
      error(n, what + ": '" + *s + "' is not a whole number");
      return std::nullopt;
    }
    if (v < lo || v > hi) {
      error(n, what + " must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " + *s);
      return std::nullopt;
    }
    return v;
  }

  // "10%" or a fraction like 0.1.
  std::optional<double> fraction(const YAML::Node& n, const std::string& what) {
    auto s = scalar(n, what);
    if (!s) return std::nullopt;
    std::string t = *s;
    bool pct = !t.empty() && t.back() == '%';
    if (pct) t.pop_back();
    char* end = nullptr;
    double v = std::strtod(t.c_str(), &end);
    if (t.empty() || *end != '\0') {
      error(n, what + ": '" + *s + "' is not a percentage; write it like 10%");
      return std::nullopt;
    }
    if (pct) v /= 100.0;
    if (v < 0.0 || v > 1.0) {
      error(n, what + " must be between 0% and 100%, got '" + *s + "'");
      return std::nullopt;
    }
    return v;
  }

  std::optional<ParamType> param_type(const YAML::Node& n, const std::string& what, bool allow_string) {
    auto s = scalar(n, what);
    if (!s) return std::nullopt;
    if (*s == "uuid") return ParamType::uuid;
    if (*s == "int") return ParamType::integer;
    if (*s == "slug") return ParamType::slug;
    if (*s == "string" && allow_string) return ParamType::string;
    error(n, what + ": unknown type '" + *s + "'; use one of uuid, int, slug" + (allow_string ? ", string" : ""));
    return std::nullopt;
  }

 private:
  std::string file_;
  std::vector<Problem>& problems_;
};

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

std::string fnv_hex(std::string_view data, int hex_digits) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  std::string out;
  append_hex(out, h >> (64 - 4 * hex_digits), hex_digits);
  return out;
}

// Removes trailing whitespace and semicolons so the SQL can be wrapped.
std::string trim_sql(std::string s) {
  while (!s.empty() && (std::isspace(static_cast<unsigned char>(s.back())) || s.back() == ';')) s.pop_back();
  std::size_t b = 0;
  while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  return s.substr(b);
}

// ---------------------------------------------------------------------------
// Entity files
// ---------------------------------------------------------------------------

bool is_table_name(const std::string& t) {
  auto dot = t.find('.');
  if (dot == std::string::npos) return is_identifier(t, false);
  return is_identifier(t.substr(0, dot), false) && is_identifier(t.substr(dot + 1), false);
}

// invalidate_on: a list of { table, params: { param: column }, tenant_column }.
// Tables are not checked against the database (they may not exist yet);
// columns must be plain identifiers and every mapped param must exist.
void load_invalidate_on(const YAML::Node& list, const Config& cfg, Entity& e, FileCtx& ctx) {
  if (!list.IsSequence()) {
    ctx.error(list, "invalidate_on must be a list, like '- table: users' with optional 'params: { user_id: id }'");
    return;
  }
  for (const auto& item : list) {
    if (!item.IsMap()) {
      ctx.error(item, "each invalidate_on entry must be a mapping with 'table' (and optional 'params', 'tenant_column')");
      continue;
    }
    ctx.check_keys(item, {"table", "params", "tenant_column"}, "an invalidate_on entry");
    InvalidateOn rule;
    if (!item["table"]) {
      ctx.error(item, "an invalidate_on entry needs 'table': the table whose changes invalidate this entity");
    } else if (auto t = ctx.scalar(item["table"], "invalidate_on table")) {
      if (!is_table_name(*t)) ctx.error(item["table"], "table '" + *t + "' must be a plain lower-case name, optionally schema-qualified (public.users)");
      rule.table = *t;
    }
    if (e.scope == Scope::tenant) {
      rule.tenant_column = cfg.tenant.param;
      if (item["tenant_column"]) {
        if (auto c = ctx.scalar(item["tenant_column"], "tenant_column")) {
          if (!is_identifier(*c, false)) ctx.error(item["tenant_column"], "tenant_column '" + *c + "' must be a plain column name");
          rule.tenant_column = *c;
        }
      }
    } else if (item["tenant_column"]) {
      ctx.error(item["tenant_column"], "a global entity has no tenant: remove tenant_column");
    }
    if (const YAML::Node& ps = item["params"]; ps && !ps.IsNull()) {
      if (!ps.IsMap()) {
        ctx.error(ps, "invalidate_on params must map entity params to columns, like { user_id: id }");
      } else {
        for (auto it = ps.begin(); it != ps.end(); ++it) {
          std::string param = it->first.Scalar();
          auto col = ctx.scalar(it->second, "the column for '" + param + "'");
          if (!col) continue;
          if (param == cfg.tenant.param && e.scope == Scope::tenant) {
            ctx.error(it->first, "the tenant comes from tenant_column (default '" + cfg.tenant.param + "'); remove '" + param + "' from params");
            continue;
          }
          bool declared = std::any_of(e.params.begin(), e.params.end(), [&](const ParamSpec& p) { return p.name == param && !p.is_tenant; });
          if (!declared) {
            ctx.error(it->first, "invalidate_on maps '" + param + "', which is not a param of this entity");
            continue;
          }
          if (!is_identifier(*col, false)) {
            ctx.error(it->second, "column '" + *col + "' must be a plain column name (lower-case letters, digits, _)");
            continue;
          }
          rule.params.emplace_back(param, *col);
        }
      }
    }
    e.invalidate_on.push_back(std::move(rule));
  }
}

void load_entity(const std::string& path, const Config& cfg, std::vector<Problem>& problems,
                 std::vector<Entity>& out, std::map<std::string, std::string>& names) {
  FileCtx ctx(path, problems);
  std::string text;
  auto root_opt = load_yaml(path, ctx, &text);
  if (!root_opt) return;
  const YAML::Node& root = *root_opt;
  std::size_t before = problems.size();
  ctx.check_keys(root, {"name", "scope", "params", "result", "sql", "ttl", "ttl_jitter", "negative_ttl", "invalidate_on",
                        "stale_if_error", "stale_while_revalidate", "early_refresh", "max_concurrent_fills", "l1_ttl"},
                 "an entity file");

  Entity e;
  e.file = path;
  e.ttl = cfg.defaults.ttl;
  e.negative_ttl = cfg.defaults.negative_ttl;
  e.ttl_jitter = cfg.defaults.ttl_jitter;
  e.l1_ttl = cfg.l1.ttl;

  if (!root["name"]) {
    ctx.error(root, "missing key 'name': give the entity a name like 'user' ([a-z][a-z0-9_]*)");
  } else if (auto n = ctx.scalar(root["name"], "name")) {
    if (!is_identifier(*n, true)) {
      ctx.error(root["name"], "name '" + *n + "' is not valid; use lower-case letters, digits and _, starting with a letter (at most 63)");
    } else {
      e.name = *n;
      auto [it, fresh] = names.emplace(*n, path + ":" + std::to_string(root["name"].Mark().line + 1));
      if (!fresh) ctx.error(root["name"], "entity name '" + *n + "' is already used by " + it->second + "; names must be unique");
    }
  }

  if (root["scope"]) {
    if (auto s = ctx.scalar(root["scope"], "scope")) {
      if (*s == "tenant") e.scope = Scope::tenant;
      else if (*s == "global") e.scope = Scope::global;
      else ctx.error(root["scope"], "scope '" + *s + "' is not valid; use 'tenant' or 'global'");
    }
  }

  if (e.scope == Scope::tenant) {
    ParamSpec t;
    t.name = cfg.tenant.param;
    t.type = cfg.tenant.type;
    t.is_tenant = true;
    e.params.push_back(t);
  }
  std::map<std::string, int> param_line;  // declared param -> line (for "declared but unused")

  if (const YAML::Node& ps = root["params"]; ps) {
    if (ps.IsNull()) {
      // "params:" with nothing: no params
    } else if (!ps.IsMap()) {
      ctx.error(ps, "params must be a mapping of name: type, e.g. 'user_id: uuid'");
    } else {
      ctx.check_keys(ps, [&] {
        std::vector<std::string> all;
        for (auto it = ps.begin(); it != ps.end(); ++it)
          if (it->first.IsScalar()) all.push_back(it->first.Scalar());
        return all;
      }(), "params");
      for (auto it = ps.begin(); it != ps.end(); ++it) {
        if (!it->first.IsScalar()) continue;
        std::string pname = it->first.Scalar();
        if (!is_identifier(pname, false)) {
          ctx.error(it->first, "param name '" + pname + "' is not valid; use lower-case letters, digits and _");
          continue;
        }
        ParamSpec p;
        p.name = pname;
        YAML::Node v = it->second;
        std::optional<ParamType> type;
        if (v.IsMap()) {
          ctx.check_keys(v, {"type", "max_len"}, "param '" + pname + "'");
          if (!v["type"]) ctx.error(v, "param '" + pname + "' needs a type: uuid, int, slug or string");
          else type = ctx.param_type(v["type"], "param '" + pname + "'", true);
          if (v["max_len"]) {
            if (auto ml = ctx.integer(v["max_len"], "param '" + pname + "' max_len", 1, 1 << 20)) {
              if (type && *type != ParamType::string)
                ctx.error(v["max_len"], "max_len applies only to type string; remove it from param '" + pname + "'");
              p.max_len = static_cast<std::size_t>(*ml);
            }
          }
        } else {
          type = ctx.param_type(v, "param '" + pname + "'", true);
        }
        if (!type) continue;
        p.type = *type;
        if (pname == cfg.tenant.param) {
          if (e.scope == Scope::global) {
            ctx.error(it->first, "a global entity must not declare the tenant param '" + pname +
                                     "'; remove it, or make the entity 'scope: tenant'");
            continue;
          }
          if (p.type != cfg.tenant.type)
            ctx.error(it->first, "the tenant param '" + pname + "' is implied with type " + to_string(cfg.tenant.type) +
                                     "; remove this declaration");
          continue;  // implied; already first
        }
        param_line[pname] = it->first.Mark().line + 1;
        e.params.push_back(p);
      }
    }
  }

  if (root["result"]) {
    if (auto s = ctx.scalar(root["result"], "result")) {
      if (*s == "row") e.result = ResultShape::row;
      else if (*s == "rows") e.result = ResultShape::rows;
      else ctx.error(root["result"], "result '" + *s + "' is not valid; use 'row' (one JSON object) or 'rows' (a JSON array)");
    }
  }

  if (root["ttl"]) if (auto d = ctx.duration(root["ttl"], "ttl")) e.ttl = *d;
  if (root["ttl_jitter"]) if (auto f = ctx.fraction(root["ttl_jitter"], "ttl_jitter")) e.ttl_jitter = *f;
  if (root["negative_ttl"]) {
    if (auto d = ctx.duration(root["negative_ttl"], "negative_ttl")) e.negative_ttl = *d;
    if (e.result == ResultShape::rows)
      ctx.error(root["negative_ttl"], "negative_ttl applies only to 'result: row' (a rows entity answers [] instead of 404); remove it");
  }

  if (root["stale_if_error"])
    if (auto d = ctx.duration(root["stale_if_error"], "stale_if_error", false)) e.stale_if_error = *d;
  if (root["stale_while_revalidate"])
    if (auto d = ctx.duration(root["stale_while_revalidate"], "stale_while_revalidate", false)) e.stale_while_revalidate = *d;
  if (const YAML::Node& er = root["early_refresh"]; er) {
    if (!er.IsMap()) {
      ctx.error(er, "early_refresh must be a mapping, like { beta: 1.0 }");
    } else {
      ctx.check_keys(er, {"beta"}, "early_refresh");
      if (!er["beta"]) ctx.error(er, "early_refresh needs 'beta' (1.0 is the usual choice; larger refreshes earlier)");
      else if (auto b = ctx.scalar(er["beta"], "early_refresh.beta")) {
        char* end = nullptr;
        double v = std::strtod(b->c_str(), &end);
        if (b->empty() || *end != '\0' || v <= 0 || v > 100)
          ctx.error(er["beta"], "early_refresh.beta must be a number above 0 (and at most 100), like 1.0");
        else e.early_refresh_beta = v;
      }
    }
  }
  if (root["max_concurrent_fills"])
    if (auto v = ctx.integer(root["max_concurrent_fills"], "max_concurrent_fills", 1, 100000))
      e.max_concurrent_fills = static_cast<std::size_t>(*v);
  if (root["l1_ttl"]) {
    if (auto d = ctx.duration(root["l1_ttl"], "l1_ttl", false)) {
      e.l1_ttl = *d;
      if (*d > kMaxL1Ttl)
        ctx.error(root["l1_ttl"], "l1_ttl is at most 1m: an L1 copy is only checked against invalidations it hears of; "
                                  "keep it short, like 2s (0s keeps this entity out of L1)");
    }
  }

  if (!root["sql"]) {
    ctx.error(root, "missing key 'sql': the query whose result this entity caches");
  } else if (auto sql = ctx.scalar(root["sql"], "sql")) {
    e.sql = *sql;
    std::string trimmed = trim_sql(*sql);
    if (trimmed.empty()) ctx.error(root["sql"], "sql is empty");
    // Where the SQL text starts in the file: a block scalar (| or >) starts on
    // the line after its indicator.
    const YAML::Mark m = root["sql"].Mark();
    int first_line = m.line + 1;
    {
      std::istringstream ls(text);
      std::string l;
      for (int i = 0; i <= m.line && std::getline(ls, l); ++i) {}
      auto last = l.find_last_not_of(" \t\r");
      if (last != std::string::npos) {
        std::string tail = l.substr(m.column >= 0 ? static_cast<std::size_t>(m.column) : 0);
        if (!tail.empty() && (tail[0] == '|' || tail[0] == '>')) first_line = m.line + 2;
      }
    }
    auto line_of = [&](std::size_t offset) {
      return first_line + static_cast<int>(std::count(sql->begin(), sql->begin() + static_cast<long>(offset), '\n'));
    };
    RewrittenSql rw = rewrite_named_params(*sql);
    for (std::size_t off : rw.positional)
      ctx.error_line(line_of(off), 0, "the SQL uses a positional parameter ($1 style); write named parameters like :user_id instead");
    std::set<std::string> used(rw.order.begin(), rw.order.end());
    for (const auto& u : rw.uses) {
      bool declared = std::any_of(e.params.begin(), e.params.end(), [&](const ParamSpec& p) { return p.name == u.name; });
      if (!declared) {
        if (u.name == cfg.tenant.param && e.scope == Scope::global)
          ctx.error_line(line_of(u.offset), 0, "the SQL of a global entity uses the tenant param :" + u.name +
                                                   "; make the entity 'scope: tenant' or remove it from the SQL");
        else
          ctx.error_line(line_of(u.offset), 0, "the SQL uses :" + u.name + " but it is not declared; add '" + u.name +
                                                   ": <type>' under params (or fix the spelling)");
      }
    }
    for (const auto& p : e.params) {
      if (used.count(p.name)) continue;
      if (p.is_tenant)
        ctx.error(root["sql"], "a tenant-scoped entity must filter by the tenant: the SQL must use :" + p.name +
                                   " (or declare 'scope: global' if the data is shared by all tenants)");
      else
        ctx.error_line(param_line[p.name], 0, "param '" + p.name + "' is declared but the SQL never uses :" + p.name +
                                                  "; use it or remove it");
    }
    // The wrapper's row alias must not be a column name of the user's query
    // (json_agg(q) would aggregate a column "q" instead of the row).
    std::string inner = trim_sql(rw.sql);
    if (e.result == ResultShape::row)
      e.query = "SELECT row_to_json(_sidecache_row)::text FROM (\n" + inner + "\n) _sidecache_row LIMIT 2";
    else
      e.query = "SELECT coalesce(json_agg(_sidecache_row), '[]'::json)::text FROM (\n" + inner + "\n) _sidecache_row";
    for (const auto& name : rw.order) {
      for (std::size_t i = 0; i < e.params.size(); ++i)
        if (e.params[i].name == name) e.bind.push_back(i);
    }
  }

  if (const YAML::Node& inv = root["invalidate_on"]; inv) load_invalidate_on(inv, cfg, e, ctx);

  if (problems.size() != before) return;
  std::string shape = std::string(e.result == ResultShape::row ? "row" : "rows") + '\0' + e.query;
  for (const auto& p : e.params) shape += std::string("\0", 1) + p.name + '=' + to_string(p.type);
  e.shape_hash = fnv_hex(shape, 8);
  e.statement = "sc_" + e.name + "_" + e.shape_hash;
  out.push_back(std::move(e));
}

// ---------------------------------------------------------------------------
// Main file
// ---------------------------------------------------------------------------

void apply_string(FileCtx& ctx, const YAML::Node& parent, const char* key, std::string& target) {
  if (parent[key]) if (auto s = ctx.scalar(parent[key], key)) target = *s;
}

}  // namespace

std::optional<Listen> parse_listen(const std::string& text, std::string& why) {
  Listen l;
  l.text = text;
  if (text.rfind("unix:", 0) == 0) {
    l.is_unix = true;
    l.path = text.substr(5);
    if (l.path.empty() || l.path[0] != '/') {
      why = "a unix socket must be an absolute path, like unix:/run/sidecache.sock";
      return std::nullopt;
    }
    if (l.path.size() >= 100) {
      why = "the unix socket path is too long (at most 100 bytes)";
      return std::nullopt;
    }
    return l;
  }
  std::string host, port;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      why = "write an IPv6 address as [::1]:7070";
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) {
      why = "write it as host:port (like 127.0.0.1:7070) or unix:/path/to.sock";
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  char* end = nullptr;
  long p = std::strtol(port.c_str(), &end, 10);
  if (host.empty() || port.empty() || *end != '\0' || p < 0 || p > 65535) {
    why = "write it as host:port with a port from 0 to 65535, like 127.0.0.1:7070";
    return std::nullopt;
  }
  l.host = host == "localhost" ? "127.0.0.1" : host;
  l.port = static_cast<std::uint16_t>(p);
  return l;
}

// A malformed escape stays as written (the URL is then refused or used as is).
std::string url_decode(const std::string& s) {
  std::string out;
  return percent_decode(s, out, false) ? out : s;
}

std::optional<RedisConfig> parse_redis_url(const std::string& url, std::string& why) {
  RedisConfig r;
  r.url = url;
  if (url.rfind("unix://", 0) == 0) {
    r.is_unix = true;
    std::string rest = url.substr(7);
    auto q = rest.find('?');
    r.path = rest.substr(0, q);
    if (q != std::string::npos) {
      std::string query = rest.substr(q + 1);
      std::stringstream ss(query);
      std::string kv;
      while (std::getline(ss, kv, '&')) {
        auto eq = kv.find('=');
        std::string k = kv.substr(0, eq), v = eq == std::string::npos ? "" : url_decode(kv.substr(eq + 1));
        if (k == "db") r.db = std::atoi(v.c_str());
        else if (k == "password") r.password = v;
        else if (k == "user") r.username = v;
        else { why = "unknown option '" + k + "' in the unix:// Redis URL (use db, user, password)"; return std::nullopt; }
      }
    }
    if (r.path.empty() || r.path[0] != '/') { why = "write a unix socket URL as unix:///path/to/redis.sock?db=0"; return std::nullopt; }
    return r;
  }
  if (url.rfind("redis://", 0) != 0) {
    why = "the Redis URL must start with redis:// (or unix:// for a socket), like redis://127.0.0.1:6379/0";
    return std::nullopt;
  }
  std::string rest = url.substr(8);
  auto at = rest.rfind('@');
  if (at != std::string::npos) {
    std::string cred = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = cred.find(':');
    if (colon == std::string::npos) {
      r.password = url_decode(cred);  // redis://secret@host is a common shorthand
    } else {
      r.username = url_decode(cred.substr(0, colon));
      r.password = url_decode(cred.substr(colon + 1));
    }
  }
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  if (slash != std::string::npos) {
    std::string db = rest.substr(slash + 1);
    if (!db.empty()) {
      char* end = nullptr;
      long d = std::strtol(db.c_str(), &end, 10);
      if (*end != '\0' || d < 0 || d > 1000) { why = "the database in the Redis URL must be a number, like /0"; return std::nullopt; }
      r.db = static_cast<int>(d);
    }
  }
  std::string why_listen;
  if (hostport.find(':') == std::string::npos) hostport += ":6379";
  auto l = parse_listen(hostport, why_listen);
  if (!l || l->port == 0) { why = "the Redis URL needs host[:port], like redis://127.0.0.1:6379/0"; return std::nullopt; }
  r.host = l->host;
  r.port = l->port;
  return r;
}

std::string mask_secrets(const std::string& s) {
  std::string out = s;
  // URL form: scheme://user:password@host
  auto scheme = out.find("://");
  if (scheme != std::string::npos) {
    auto at = out.find('@', scheme + 3);
    if (at != std::string::npos) {
      auto colon = out.find(':', scheme + 3);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
      else if (out.compare(0, 8, "redis://") == 0) out.replace(scheme + 3, at - scheme - 3, "***");
    }
    auto pw = out.find("password=");
    if (pw != std::string::npos) {
      auto end = out.find('&', pw);
      out.replace(pw + 9, (end == std::string::npos ? out.size() : end) - pw - 9, "***");
    }
    return out;
  }
  // key=value DSN: password=secret or password='sec ret'
  std::size_t pos = 0;
  while ((pos = out.find("password", pos)) != std::string::npos) {
    std::size_t i = pos + 8;
    while (i < out.size() && out[i] == ' ') ++i;
    if (i >= out.size() || out[i] != '=') { pos = i; continue; }
    ++i;
    while (i < out.size() && out[i] == ' ') ++i;
    std::size_t end = i;
    if (end < out.size() && out[end] == '\'') {
      ++end;
      while (end < out.size() && out[end] != '\'') end += (out[end] == '\\') ? 2 : 1;
      end = std::min(end + 1, out.size());
    } else {
      while (end < out.size() && out[end] != ' ') ++end;
    }
    out.replace(i, end - i, "***");
    pos = i + 3;
  }
  return out;
}

Config load(const std::string& path, const EnvLookup& env) {
  std::vector<Problem> problems;
  Config cfg;
  cfg.file = path;
  FileCtx ctx(path, problems);
  auto root_opt = load_yaml(path, ctx, nullptr);
  if (!root_opt) throw LoadError(std::move(problems));
  const YAML::Node& root = *root_opt;

  ctx.check_keys(root, {"listen", "unix_socket", "workers", "key_prefix", "tenant", "redis", "postgres", "entities_dir",
                        "defaults", "http", "invalidation", "auth", "l1", "shutdown_timeout", "log_level", "log_format", "access_log"},
                 "the main config");

  std::string listen = "127.0.0.1:7070";
  YAML::Mark listen_mark = root.Mark();
  if (root["listen"]) { apply_string(ctx, root, "listen", listen); listen_mark = root["listen"].Mark(); }
  if (auto v = env("SIDECACHE_LISTEN")) {
    std::string why;
    if (auto l = parse_listen(*v, why)) cfg.listen = *l;
    else ctx.error_file("environment variable SIDECACHE_LISTEN='" + *v + "': " + why);
  } else {
    std::string why;
    if (auto l = parse_listen(listen, why)) cfg.listen = *l;
    else ctx.error(listen_mark, "listen '" + listen + "': " + why);
  }

  unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  cfg.workers = hw;
  if (root["workers"]) if (auto w = ctx.integer(root["workers"], "workers", 1, 256)) cfg.workers = static_cast<unsigned>(*w);

  if (root["key_prefix"]) {
    apply_string(ctx, root, "key_prefix", cfg.key_prefix);
    for (unsigned char c : cfg.key_prefix)
      if (c <= 0x20 || c == 0x7f) { ctx.error(root["key_prefix"], "key_prefix must not contain spaces or control characters"); break; }
  }

  if (const YAML::Node& t = root["tenant"]; t) {
    if (!t.IsMap()) ctx.error(t, "tenant must be a mapping with 'param' and 'type'");
    else {
      ctx.check_keys(t, {"param", "type"}, "tenant");
      if (t["param"]) {
        apply_string(ctx, t, "param", cfg.tenant.param);
        if (!is_identifier(cfg.tenant.param, false)) ctx.error(t["param"], "tenant.param must be a plain lower-case name like org_id");
      }
      if (t["type"]) if (auto ty = ctx.param_type(t["type"], "tenant.type", false)) cfg.tenant.type = *ty;
    }
  }

  std::string redis_url = "redis://127.0.0.1:6379/0";
  YAML::Mark redis_mark = root.Mark();
  unsigned breaker_failures = cfg.redis.breaker_failures, breaker_probes = cfg.redis.breaker_half_open_probes;
  milliseconds breaker_open = cfg.redis.breaker_open_timeout;
  if (const YAML::Node& r = root["redis"]; r) {
    if (!r.IsMap()) ctx.error(r, "redis must be a mapping with 'url' and 'timeout'");
    else {
      ctx.check_keys(r, {"url", "timeout", "connect_timeout", "breaker"}, "redis");
      if (const YAML::Node& b = r["breaker"]; b) {
        if (!b.IsMap()) ctx.error(b, "redis.breaker must be a mapping, like { failures: 5, open_timeout: 2s, half_open_probes: 1 }");
        else {
          ctx.check_keys(b, {"failures", "open_timeout", "half_open_probes"}, "redis.breaker");
          if (b["failures"]) if (auto v = ctx.integer(b["failures"], "redis.breaker.failures", 1, 1000000)) breaker_failures = static_cast<unsigned>(*v);
          if (b["open_timeout"]) if (auto d = ctx.duration(b["open_timeout"], "redis.breaker.open_timeout")) breaker_open = std::chrono::duration_cast<milliseconds>(*d);
          if (b["half_open_probes"]) if (auto v = ctx.integer(b["half_open_probes"], "redis.breaker.half_open_probes", 1, 1000)) breaker_probes = static_cast<unsigned>(*v);
        }
      }
      if (r["url"]) { apply_string(ctx, r, "url", redis_url); redis_mark = r["url"].Mark(); }
      if (r["timeout"]) if (auto d = ctx.duration(r["timeout"], "redis.timeout")) cfg.redis.timeout = std::chrono::duration_cast<milliseconds>(*d);
      if (r["connect_timeout"]) if (auto d = ctx.duration(r["connect_timeout"], "redis.connect_timeout")) cfg.redis.connect_timeout = std::chrono::duration_cast<milliseconds>(*d);
    }
  }
  {
    auto timeout = cfg.redis.timeout, connect_timeout = cfg.redis.connect_timeout;
    std::string why;
    auto v = env("SIDECACHE_REDIS_URL");
    if (auto rc = parse_redis_url(v ? *v : redis_url, why)) {
      cfg.redis = *rc;
      cfg.redis.timeout = timeout;
      cfg.redis.connect_timeout = connect_timeout;
      cfg.redis.breaker_failures = breaker_failures;
      cfg.redis.breaker_open_timeout = breaker_open;
      cfg.redis.breaker_half_open_probes = breaker_probes;
    } else if (v) {
      ctx.error_file("environment variable SIDECACHE_REDIS_URL: " + why);
    } else {
      ctx.error(redis_mark, "redis.url '" + mask_secrets(redis_url) + "': " + why);
    }
  }

  if (const YAML::Node& p = root["postgres"]; p) {
    if (!p.IsMap()) ctx.error(p, "postgres must be a mapping with at least 'dsn'");
    else {
      ctx.check_keys(p, {"dsn", "pool_size", "queue_limit", "statement_timeout", "connect_timeout"}, "postgres");
      apply_string(ctx, p, "dsn", cfg.postgres.dsn);
      if (p["pool_size"]) if (auto v = ctx.integer(p["pool_size"], "postgres.pool_size", 1, 1024)) cfg.postgres.pool_size = static_cast<std::size_t>(*v);
      if (p["queue_limit"]) if (auto v = ctx.integer(p["queue_limit"], "postgres.queue_limit", 0, 1000000)) cfg.postgres.queue_limit = static_cast<std::size_t>(*v);
      if (p["statement_timeout"]) if (auto d = ctx.duration(p["statement_timeout"], "postgres.statement_timeout")) cfg.postgres.statement_timeout = std::chrono::duration_cast<milliseconds>(*d);
      if (p["connect_timeout"]) if (auto d = ctx.duration(p["connect_timeout"], "postgres.connect_timeout")) cfg.postgres.connect_timeout = std::chrono::duration_cast<milliseconds>(*d);
    }
  }
  if (auto v = env("SIDECACHE_POSTGRES_DSN")) cfg.postgres.dsn = *v;
  if (cfg.postgres.dsn.empty())
    ctx.error(root, "no PostgreSQL connection: set postgres.dsn (e.g. \"host=127.0.0.1 dbname=app user=app\") or SIDECACHE_POSTGRES_DSN");

  if (const YAML::Node& d = root["defaults"]; d) {
    if (!d.IsMap()) ctx.error(d, "defaults must be a mapping, like { ttl: 5m, ttl_jitter: 10%, negative_ttl: 30s }");
    else {
      ctx.check_keys(d, {"ttl", "ttl_jitter", "negative_ttl"}, "defaults");
      if (d["ttl"]) if (auto v = ctx.duration(d["ttl"], "defaults.ttl")) cfg.defaults.ttl = *v;
      if (d["ttl_jitter"]) if (auto v = ctx.fraction(d["ttl_jitter"], "defaults.ttl_jitter")) cfg.defaults.ttl_jitter = *v;
      if (d["negative_ttl"]) if (auto v = ctx.duration(d["negative_ttl"], "defaults.negative_ttl")) cfg.defaults.negative_ttl = *v;
    }
  }

  if (const YAML::Node& h = root["http"]; h) {
    if (!h.IsMap()) ctx.error(h, "http must be a mapping");
    else {
      ctx.check_keys(h, {"max_connections", "max_header_bytes", "max_target_bytes", "header_timeout", "idle_timeout"}, "http");
      if (h["max_connections"]) if (auto v = ctx.integer(h["max_connections"], "http.max_connections", 1, 1000000)) cfg.http.max_connections = static_cast<std::size_t>(*v);
      if (h["max_header_bytes"]) if (auto v = ctx.integer(h["max_header_bytes"], "http.max_header_bytes", 1024, 1 << 20)) cfg.http.max_header_bytes = static_cast<std::size_t>(*v);
      if (h["max_target_bytes"]) if (auto v = ctx.integer(h["max_target_bytes"], "http.max_target_bytes", 64, 1 << 20)) cfg.http.max_target_bytes = static_cast<std::size_t>(*v);
      if (h["header_timeout"]) if (auto v = ctx.duration(h["header_timeout"], "http.header_timeout")) cfg.http.header_timeout = std::chrono::duration_cast<milliseconds>(*v);
      if (h["idle_timeout"]) if (auto v = ctx.duration(h["idle_timeout"], "http.idle_timeout")) cfg.http.idle_timeout = std::chrono::duration_cast<milliseconds>(*v);
    }
  }
  if (const YAML::Node& l1 = root["l1"]; l1) {
    if (!l1.IsMap()) ctx.error(l1, "l1 must be a mapping, like { max_bytes: 64MiB, ttl: 2s }");
    else {
      ctx.check_keys(l1, {"max_bytes", "ttl"}, "l1");
      if (l1["max_bytes"]) if (auto v = ctx.scalar(l1["max_bytes"], "l1.max_bytes")) {
        auto b = parse_bytes(*v);
        if (!b || *b > (std::size_t{1} << 40))
          ctx.error(l1["max_bytes"], "l1.max_bytes: '" + *v + "' is not a size; write it like 64MiB, 512KiB or 0 (off)");
        else cfg.l1.max_bytes = *b;
      }
      if (l1["ttl"]) if (auto d = ctx.duration(l1["ttl"], "l1.ttl")) {
        cfg.l1.ttl = *d;
        if (*d > kMaxL1Ttl)
          ctx.error(l1["ttl"], "l1.ttl is at most 1m; keep it short, like 2s");
      }
    }
  }
  if (const YAML::Node& inv = root["invalidation"]; inv) {
    if (!inv.IsMap()) ctx.error(inv, "invalidation must be a mapping, like { channel: sidecache_invalidate }");
    else {
      ctx.check_keys(inv, {"channel", "flush_on_listen"}, "invalidation");
      if (inv["channel"]) {
        apply_string(ctx, inv, "channel", cfg.invalidation.channel);
        if (!is_identifier(cfg.invalidation.channel, false))
          ctx.error(inv["channel"], "invalidation.channel must be a plain lower-case name like sidecache_invalidate");
      }
      if (inv["flush_on_listen"]) {
        auto v = ctx.scalar(inv["flush_on_listen"], "invalidation.flush_on_listen");
        if (v && (*v == "true" || *v == "false")) cfg.invalidation.flush_on_listen = *v == "true";
        else if (v) ctx.error(inv["flush_on_listen"], "invalidation.flush_on_listen must be true or false");
      }
    }
  }
  if (const YAML::Node& us = root["unix_socket"]; us) {
    if (!us.IsMap()) ctx.error(us, "unix_socket must be a mapping, like { mode: \"0660\", group: app }");
    else {
      ctx.check_keys(us, {"mode", "group"}, "unix_socket");
      if (us["mode"]) if (auto m = ctx.scalar(us["mode"], "unix_socket.mode")) {
        char* end = nullptr;
        long v = std::strtol(m->c_str(), &end, 8);
        if (m->empty() || *end != '\0' || v < 0 || v > 0777) ctx.error(us["mode"], "unix_socket.mode must be octal permissions like \"0660\"");
        else cfg.listen.unix_mode = static_cast<unsigned>(v);
      }
      if (us["group"]) apply_string(ctx, us, "group", cfg.listen.unix_group);
    }
  }
  if (const YAML::Node& a = root["auth"]; a) {
    if (!a.IsMap()) ctx.error(a, "auth must be a mapping, like { token_file: /run/secrets/sidecache-token }");
    else {
      ctx.check_keys(a, {"token_file", "metrics"}, "auth");
      if (a["metrics"]) if (auto m = ctx.scalar(a["metrics"], "auth.metrics")) {
        if (*m == "token") cfg.auth.metrics_need_token = true;
        else if (*m != "open") ctx.error(a["metrics"], "auth.metrics must be 'open' (scrapers need no token) or 'token'");
      }
      if (a["token_file"]) if (auto f = ctx.scalar(a["token_file"], "auth.token_file")) {
        fs::path tp(*f);
        if (tp.is_relative()) tp = fs::absolute(fs::path(path).parent_path()) / tp;
        cfg.auth.token_file = tp.lexically_normal().string();
        std::ifstream in(cfg.auth.token_file);
        std::stringstream ss;
        if (!in) {
          ctx.error(a["token_file"], "auth.token_file '" + cfg.auth.token_file + "' cannot be read: " + std::strerror(errno));
        } else {
          ss << in.rdbuf();
          std::string t = ss.str();
          while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
          while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front()))) t.erase(0, 1);
          if (t.size() < 16)
            ctx.error(a["token_file"], "the token in '" + cfg.auth.token_file + "' is shorter than 16 characters; use a long random one (openssl rand -hex 32)");
          cfg.auth.token = t;
        }
      }
    }
  }
  if (root["shutdown_timeout"]) if (auto v = ctx.duration(root["shutdown_timeout"], "shutdown_timeout")) cfg.shutdown_timeout = std::chrono::duration_cast<milliseconds>(*v);
  if (root["log_format"]) if (auto f = ctx.scalar(root["log_format"], "log_format")) {
    if (*f == "json") cfg.log_json = true;
    else if (*f != "text") ctx.error(root["log_format"], "log_format must be 'text' or 'json'");
  }
  if (root["access_log"]) if (auto v = ctx.scalar(root["access_log"], "access_log")) {
    if (*v == "true" || *v == "false") cfg.access_log = *v == "true";
    else ctx.error(root["access_log"], "access_log must be true or false");
  }
  if (root["log_level"]) {
    apply_string(ctx, root, "log_level", cfg.log_level);
    static const std::vector<std::string> levels = {"trace", "debug", "info", "warn", "error", "critical", "off"};
    if (std::find(levels.begin(), levels.end(), cfg.log_level) == levels.end())
      ctx.error(root["log_level"], "log_level '" + cfg.log_level + "' is not valid; use trace, debug, info, warn, error, critical or off");
  }

  // Entities: only once the defaults and the tenant are known.
  if (!root["entities_dir"]) {
    ctx.error(root, "missing key 'entities_dir': the folder (relative to this file) holding one *.yaml per entity");
  } else if (auto dir = ctx.scalar(root["entities_dir"], "entities_dir")) {
    fs::path p(*dir);
    if (p.is_relative()) p = fs::absolute(fs::path(path).parent_path()) / p;
    cfg.entities_dir = p.lexically_normal().string();
    std::error_code ec;
    std::vector<fs::path> files;
    fs::directory_iterator it(p, ec);
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
      for (const auto& f : files) load_entity(f.string(), cfg, problems, cfg.entities, names);
    }
  }

  if (!problems.empty()) throw LoadError(std::move(problems));
  return cfg;
}

std::optional<std::size_t> parse_bytes(const std::string& text) {
  std::size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == 0 || i > 15) return std::nullopt;
  std::size_t n = std::stoull(text.substr(0, i));
  std::string unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  static const std::vector<std::pair<std::string, std::size_t>> units = {
      {"", 1},          {"B", 1},          {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30},
      {"KB", 1000},     {"MB", 1000000},   {"GB", 1000000000},  {"k", 1000},         {"K", 1ull << 10},
      {"M", 1ull << 20}, {"G", 1ull << 30}};
  for (const auto& [u, mul] : units)
    if (unit == u) return n * mul;
  return std::nullopt;
}

}  // namespace sidecache::config

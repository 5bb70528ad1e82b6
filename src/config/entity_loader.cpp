// Entity files: one entity per file in entities_dir.
#include "entity_loader.hpp"

#include "entity_batch.hpp"
#include "entity_tags.hpp"

#include <algorithm>
#include <set>
#include <sstream>

#include "sidecache/config/sql_params.hpp"
#include "sql_wrap.hpp"
#include "yaml_file.hpp"

namespace sidecache::config::detail {
namespace {

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
    ctx.check_keys(item, {"table", "params", "tenant_column", "tags"}, "an invalidate_on entry");
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
    if (const YAML::Node& tags = item["tags"]; tags) {
      load_tags(tags, e, TagSource::written_row, rule.tags, ctx);
      if (!rule.params.empty() && !rule.tags.empty())
        ctx.error(tags, "an invalidate_on entry gives either params (one key) or tags, not both; split it into two entries");
    }
    e.invalidate_on.push_back(std::move(rule));
  }
}

}  // namespace

void load_entity(const std::string& path, const Config& cfg, std::vector<Problem>& problems,
                 std::vector<Entity>& out, std::map<std::string, std::string>& names, std::vector<Problem>& warnings) {
  FileCtx ctx(path, problems, &warnings);
  std::string text;
  auto root_opt = load_yaml(path, ctx, &text);
  if (!root_opt) return;
  const YAML::Node& root = *root_opt;
  std::size_t before = problems.size();
  ctx.check_keys(root, {"name", "scope", "params", "result", "sql", "ttl", "ttl_jitter", "negative_ttl", "invalidate_on",
                        "stale_if_error", "stale_while_revalidate", "early_refresh", "max_concurrent_fills", "l1_ttl",
                        "max_value_bytes", "tenants", "batch", "tags"},
                 "an entity file");

  Entity e;
  e.file = path;
  e.ttl = cfg.defaults.ttl;
  e.negative_ttl = cfg.defaults.negative_ttl;
  e.ttl_jitter = cfg.defaults.ttl_jitter;
  e.l1_ttl = cfg.l1.ttl;
  e.max_value_bytes = cfg.max_value_bytes;
  e.tenant_max_concurrent_fills = cfg.tenants.max_concurrent_fills;

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
              // Even unencoded ASCII, "/v1/entities/<name>?<param>=" plus
              // max_len characters must fit the request target.
              std::size_t room = cfg.http.max_target_bytes;
              std::size_t path = std::string("/v1/entities/").size() + e.name.size() + 1 + pname.size() + 1;
              if (type == ParamType::string && path + p.max_len > room)
                ctx.warn(v["max_len"], "param '" + pname + "' max_len " + std::to_string(p.max_len) +
                                           " cannot be reached: a request target is at most http.max_target_bytes (" +
                                           std::to_string(room) + ") bytes; lower max_len or raise http.max_target_bytes");
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
  if (const YAML::Node& tn = root["tenants"]) {
    if (!tn.IsMap()) {
      ctx.error(tn, "tenants must be a mapping, like tenants: { max_concurrent_fills: 8 }");
    } else {
      ctx.check_keys(tn, {"max_concurrent_fills"}, "an entity's tenants section");
      if (tn["max_concurrent_fills"])
        if (auto v = ctx.integer(tn["max_concurrent_fills"], "tenants.max_concurrent_fills", 0, 100000))
          e.tenant_max_concurrent_fills = static_cast<std::size_t>(*v);
    }
  }
  if (root["max_value_bytes"]) {
    if (auto v = ctx.scalar(root["max_value_bytes"], "max_value_bytes")) {
      auto b = parse_bytes(*v);
      if (!b || *b < 1024 || *b > (std::size_t{512} << 20))
        ctx.error(root["max_value_bytes"], "max_value_bytes: '" + *v + "' is not a size from 1KiB to 512MiB; write it like 4MiB");
      else e.max_value_bytes = *b;
    }
  }
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
    e.query = wrap_query(trim_sql(rw.sql), e.result);
    for (const auto& name : rw.order) {
      for (std::size_t i = 0; i < e.params.size(); ++i)
        if (e.params[i].name == name) e.bind.push_back(i);
    }
  }

  if (const YAML::Node& tags = root["tags"]; tags) load_tags(tags, e, TagSource::entity, e.tags, ctx);
  if (const YAML::Node& inv = root["invalidate_on"]; inv) load_invalidate_on(inv, cfg, e, ctx);
  if (const YAML::Node& b = root["batch"]; b && problems.size() == before) load_batch(b, cfg, e, ctx);

  if (problems.size() != before) return;
  name_statement(e);
  out.push_back(std::move(e));
}

}  // namespace sidecache::config::detail

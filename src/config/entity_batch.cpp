// An entity's batch form (`batch:` in its file): the query that fills many
// keys in one round trip (docs/configuration.md, "Entity files").
#include <algorithm>
#include <set>

#include "entity_batch.hpp"
#include "sidecache/config/sql_params.hpp"
#include "sql_wrap.hpp"
#include "value_parsers.hpp"

namespace sidecache::config::detail {

void load_batch(const YAML::Node& node, const Config& cfg, Entity& e, FileCtx& ctx) {
  if (!node.IsMap()) {
    ctx.error(node, "batch must be a mapping with param, sql and key_column");
    return;
  }
  ctx.check_keys(node, {"param", "sql", "key_column"}, "an entity's batch form");
  if (e.result != ResultShape::row) {
    ctx.error(node, "a batch form is for 'result: row' entities (one row per key); remove it, or make the entity a row");
    return;
  }
  BatchForm b;
  bool ok = true;
  if (!node["param"]) {
    ctx.error(node, "batch needs 'param': the parameter that varies between the keys of a batch, like user_id");
    ok = false;
  } else if (auto p = ctx.scalar(node["param"], "batch.param")) {
    auto it = std::find_if(e.params.begin(), e.params.end(), [&](const ParamSpec& s) { return s.name == *p; });
    if (it == e.params.end()) {
      ctx.error(node["param"], "batch.param '" + *p + "' is not a declared param of this entity");
      ok = false;
    } else if (it->is_tenant) {
      ctx.error(node["param"], "batch.param cannot be the tenant: a batch never spans tenants; name another param");
      ok = false;
    } else {
      b.param = static_cast<std::size_t>(it - e.params.begin());
    }
  } else {
    ok = false;
  }
  if (!node["key_column"]) {
    ctx.error(node, "batch needs 'key_column': the result column that holds each row's value of the param");
    ok = false;
  } else if (auto k = ctx.scalar(node["key_column"], "batch.key_column")) {
    if (!is_identifier(*k, false)) {
      ctx.error(node["key_column"], "batch.key_column '" + *k + "' must be a plain column name like id");
      ok = false;
    }
    b.key_column = *k;
  } else {
    ok = false;
  }
  if (!node["sql"]) {
    ctx.error(node, "batch needs 'sql', using :" + (ok ? e.params[b.param].name : std::string("param")) +
                        " as an array, like WHERE id = ANY(:user_id)");
    return;
  }
  auto sql = ctx.scalar(node["sql"], "batch.sql");
  if (!sql || !ok) return;
  b.sql = *sql;
  RewrittenSql rw = rewrite_named_params(*sql);
  if (!rw.positional.empty()) {
    ctx.error(node["sql"], "batch.sql uses a positional parameter ($1 style); write named parameters like :user_id");
    return;
  }
  std::set<std::string> used(rw.order.begin(), rw.order.end());
  for (const auto& u : rw.uses) {
    if (std::none_of(e.params.begin(), e.params.end(), [&](const ParamSpec& p) { return p.name == u.name; })) {
      ctx.error(node["sql"], "batch.sql uses :" + u.name + ", which is not a param of this entity");
      return;
    }
  }
  const std::string& varying = e.params[b.param].name;
  if (!used.count(varying)) {
    ctx.error(node["sql"], "batch.sql must use :" + varying + " as the array of the batch's values, like = ANY(:" + varying + ")");
    return;
  }
  if (e.scope == Scope::tenant && !used.count(cfg.tenant.param)) {
    ctx.error(node["sql"], "a tenant-scoped batch.sql must filter by the tenant: it must use :" + cfg.tenant.param);
    return;
  }
  for (const auto& p : e.params) {
    if (!used.count(p.name)) {
      ctx.error(node["sql"], "batch.sql must use :" + p.name + " as sql does: every key of a batch shares it");
      return;
    }
  }
  for (const auto& name : rw.order)
    for (std::size_t i = 0; i < e.params.size(); ++i)
      if (e.params[i].name == name) b.bind.push_back(i);
  b.query = wrap_batch_query(trim_sql(rw.sql), b.key_column);
  e.batch = std::move(b);
}

}  // namespace sidecache::config::detail

#include "sidecache/cache/notification.hpp"

#include <boost/json.hpp>
#include <set>

#include "sidecache/cache/key.hpp"
#include "sidecache/cache/params.hpp"
#include "sidecache/cache/tags.hpp"

namespace sidecache::cache {
namespace json = boost::json;
using Scope = Invalidation::Scope;

namespace {

bool table_matches(const std::string& rule, const std::string& schema, const std::string& table) {
  return rule == table || rule == schema + "." + table;
}

Invalidation whole(const config::Entity& e) { return whole_entity(e); }

// Whose row it is, for a rule of entity `e`: "" for a global entity, nullopt
// when its tenant column is missing or not a valid tenant.
std::optional<std::string> row_tenant(const config::Entity& e, const config::InvalidateOn& rule, const json::object& row) {
  if (e.scope != config::Scope::tenant) return std::string();
  auto raw = column_text(row.if_contains(rule.tenant_column));
  std::string why;
  return raw ? normalize(e.params.at(0), *raw, why) : std::nullopt;
}

// The tag invalidations a rule with tags makes for one image of a row: each
// tag rendered from the row's columns, in the row's tenant. A tag whose
// column is NULL names nothing (no value carries such a tag).
std::vector<Invalidation> tags_for_row(const config::InvalidateOn& rule, const json::object& row, const std::string& tenant) {
  std::vector<Invalidation> out;
  auto column = [&](std::string_view name) { return column_text(row.if_contains(name)); };
  for (const auto& t : rule.tags) {
    auto tag = render_tag(t, {}, column);
    if (!tag) continue;
    Invalidation inv;
    inv.scope = Scope::tag;
    inv.tenant = tenant;
    inv.tag = std::move(*tag);
    out.push_back(std::move(inv));
  }
  return out;
}

// The invalidation a rule without tags makes for one image of a row of
// `tenant`: the key its mapped columns name, else the entity for the tenant.
Invalidation for_row(const config::Config& cfg, const config::Entity& e, const config::InvalidateOn& rule,
                     const json::object& row, const std::string& tenant) {
  Invalidation inv;
  inv.entity = &e;
  inv.tenant = tenant;
  inv.scope = Scope::entity;
  // A key needs every non-tenant param, each valid for its type.
  std::vector<std::string> values;
  if (!tenant.empty()) values.push_back(tenant);
  for (const auto& p : e.params) {
    if (p.is_tenant) continue;
    auto it = std::find_if(rule.params.begin(), rule.params.end(), [&](const auto& m) { return m.first == p.name; });
    if (it == rule.params.end()) return inv;
    auto raw = column_text(row.if_contains(it->second));
    std::string why;
    auto v = raw ? normalize(p, *raw, why) : std::nullopt;
    if (!v) return inv;
    values.push_back(*v);
  }
  if (rule.params.empty()) return inv;
  inv.scope = Scope::key;
  inv.request.entity = &e;
  inv.request.values = std::move(values);
  inv.request.key = KeyLayout(cfg).value(e, inv.request.values);
  return inv;
}

}  // namespace

Invalidation whole_entity(const config::Entity& e) {
  Invalidation inv;
  inv.entity = &e;
  inv.scope = e.scope == config::Scope::global ? Scope::entity : Scope::entity_all_tenants;
  return inv;
}

std::vector<Invalidation> invalidations_for(const config::Config& cfg, std::string_view payload, std::string& error) {
  std::vector<Invalidation> out;
  boost::system::error_code ec;
  json::value v = json::parse(payload, ec);
  if (ec || !v.is_object()) {
    error = "payload is not a JSON object";
    return out;
  }
  const json::object& o = v.as_object();
  auto table = column_text(o.if_contains("table"));
  auto op = column_text(o.if_contains("op"));
  if (!table || !op) {
    error = "payload has no table or op";
    return out;
  }
  std::string schema = column_text(o.if_contains("schema")).value_or("public");
  std::set<std::string> seen;
  auto add = [&](Invalidation inv) {
    std::string id = std::string(to_string(inv.scope)) + '\0' + (inv.entity ? inv.entity->name : "") + '\0' + inv.tenant +
                     '\0' + inv.request.key + '\0' + inv.tag;
    if (seen.insert(id).second) out.push_back(std::move(inv));
  };
  for (const auto& e : cfg.entities) {
    for (const auto& rule : e.invalidate_on) {
      if (!table_matches(rule.table, schema, *table)) continue;
      if (*op == "TRUNCATE") {
        add(whole(e));
        continue;
      }
      bool any = false;
      for (const char* image : {"old", "new"}) {
        const json::value* row = o.if_contains(image);
        if (!row || !row->is_object()) continue;
        any = true;
        const json::object& image_row = row->as_object();
        auto tenant = row_tenant(e, rule, image_row);
        if (!tenant) add(whole(e));  // cannot tell whose row it is: every tenant
        else if (rule.tags.empty()) add(for_row(cfg, e, rule, image_row, *tenant));
        else
          for (auto& inv : tags_for_row(rule, image_row, *tenant)) add(std::move(inv));
      }
      if (!any) add(whole(e));
    }
  }
  return out;
}

}  // namespace sidecache::cache

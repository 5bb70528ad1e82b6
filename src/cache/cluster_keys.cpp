#include "sidecache/cache/cluster_keys.hpp"

#include "sidecache/cache/key.hpp"
#include "sidecache/cache/tags.hpp"
#include "sidecache/redis/cluster_slots.hpp"

namespace sidecache::cache {

namespace {
// The tenant's hash tag: '=' first, so that it is never empty (an empty tag
// would hash the whole key), and the tenant encoded (no '}' inside).
std::string braced(std::string_view tenant) { return "{=" + encode_component(tenant) + "}"; }
}  // namespace

std::string cluster_tenant_mark(std::string_view prefix, std::string_view tenant) {
  return std::string(prefix) + "wm:t:" + braced(tenant);
}

std::string cluster_entity_tenant_mark(std::string_view prefix, std::string_view tenant, std::string_view entity) {
  return cluster_tenant_mark(prefix, tenant) + ":" + std::string(entity);
}

std::string cluster_tag_mark(std::string_view prefix, std::string_view tenant, std::string_view tag) {
  return std::string(prefix) + "wm:tag:" + braced(tenant) + ":" + encode_component(tag);
}

std::string cluster_slot_copy(std::string_view prefix, std::uint16_t slot, std::string_view mark) {
  return std::string(prefix) + "{" + redis::tag_of_slot(slot) + "}" + std::string(mark);
}

std::string cluster_value_key(std::string_view prefix, const config::Entity& entity, const std::vector<std::string>& values) {
  std::string plain = build_key("", entity, values);  // t:<tenant>:... or g:...
  if (entity.scope == config::Scope::tenant) {
    // t:<enc tenant>:rest -> t:{<enc tenant>}:rest
    std::string tenant = encode_component(values.at(0));
    return std::string(prefix) + "t:" + braced(values.at(0)) + plain.substr(2 + tenant.size());
  }
  return std::string(prefix) + "{" + redis::tag_of_slot(redis::key_slot(plain)) + "}" + plain;
}

std::vector<std::string> cluster_read_keys(std::string_view prefix, const config::Entity& entity,
                                           const std::vector<std::string>& values, const std::string& value_key) {
  const std::uint16_t slot = redis::key_slot(value_key);
  std::vector<std::string> keys;
  keys.reserve(4 + entity.tags.size());
  keys.push_back(value_key);
  const bool tenant = entity.scope == config::Scope::tenant;
  if (tenant) {
    keys.push_back(cluster_tenant_mark(prefix, values.at(0)));
    keys.push_back(cluster_entity_tenant_mark(prefix, values.at(0), entity.name));
  }
  keys.push_back(cluster_slot_copy(prefix, slot, "wm:e:" + entity.name));
  for (const auto& t : entity.tags) {
    if (t.from_row()) continue;
    auto tag = render_tag(t, values, [](std::string_view) { return std::optional<std::string>(); });
    if (!tag) continue;
    if (tenant) keys.push_back(cluster_tag_mark(prefix, values.at(0), *tag));
    else keys.push_back(cluster_slot_copy(prefix, slot, "wm:tag:" + encode_component(*tag)));
  }
  return keys;
}

}  // namespace sidecache::cache

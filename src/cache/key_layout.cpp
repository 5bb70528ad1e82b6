#include "sidecache/cache/key_layout.hpp"

#include "sidecache/cache/cluster_keys.hpp"
#include "sidecache/cache/key.hpp"
#include "sidecache/redis/cluster_slots.hpp"

namespace sidecache::cache {

std::string KeyLayout::value(const config::Entity& e, const std::vector<std::string>& values) const {
  return cluster_ ? cluster_value_key(prefix_, e, values) : build_key(prefix_, e, values);
}

std::vector<std::string> KeyLayout::read(const config::Entity& e, const std::vector<std::string>& values,
                                         const std::string& value_key) const {
  return cluster_ ? cluster_read_keys(prefix_, e, values, value_key) : read_keys(prefix_, e, values, value_key);
}

std::string KeyLayout::column_tag(std::string_view tenant, std::string_view tag, std::string_view value_key) const {
  if (cluster_ && tenant.empty()) return copy(redis::key_slot(value_key), tag_mark(tenant, tag));
  return tag_mark(tenant, tag);
}

std::string KeyLayout::tenant_mark(std::string_view tenant) const {
  return cluster_ ? cluster_tenant_mark(prefix_, tenant) : tenant_watermark(prefix_, tenant);
}

std::string KeyLayout::entity_tenant_mark(std::string_view tenant, std::string_view entity) const {
  return cluster_ ? cluster_entity_tenant_mark(prefix_, tenant, entity)
                  : entity_tenant_watermark(prefix_, tenant, entity);
}

std::string KeyLayout::entity_mark(std::string_view entity) const { return entity_watermark(prefix_, entity); }

std::string KeyLayout::tag_mark(std::string_view tenant, std::string_view tag) const {
  if (cluster_ && !tenant.empty()) return cluster_tag_mark(prefix_, tenant, tag);
  return tag_watermark(prefix_, tenant, tag);
}

bool KeyLayout::everywhere(std::string_view mark) const {
  return cluster_ && mark.find('{', prefix_.size()) == std::string_view::npos;
}

std::string KeyLayout::copy(std::uint16_t slot, std::string_view mark) const {
  return cluster_slot_copy(prefix_, slot, mark.substr(prefix_.size()));
}

std::string KeyLayout::l1_key(std::string_view key) const {
  if (!cluster_ || key.size() <= prefix_.size() || key[prefix_.size()] != '{') return std::string(key);
  std::size_t close = key.find('}', prefix_.size());
  if (close == std::string_view::npos || key.substr(close + 1, 3) != "wm:") return std::string(key);
  return prefix_ + std::string(key.substr(close + 1));
}

std::string KeyLayout::clock(std::string_view key) const {
  return cluster_ ? slot_clock(redis::key_slot(key)) : prefix_ + "clock";
}

std::string KeyLayout::slot_clock(std::uint16_t slot) const { return cluster_slot_copy(prefix_, slot, "clock"); }

}  // namespace sidecache::cache

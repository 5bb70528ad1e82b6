#include "sidecache/cache/key.hpp"

namespace sidecache::cache {

std::string encode_component(std::string_view raw) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(raw.size());
  for (char ch : raw) {
    unsigned char c = static_cast<unsigned char>(ch);
    bool escape = c < 0x21 || c == 0x7f || c == ':' || c == '%' || c == '*' || c == '?' || c == '[' || c == ']' ||
                  c == '{' || c == '}' || c == '\\';
    if (escape) {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xf];
    } else {
      out += ch;
    }
  }
  return out;
}

std::string build_key(std::string_view prefix, const config::Entity& entity, const std::vector<std::string>& values) {
  std::string key;
  key.reserve(prefix.size() + 64);
  key.append(prefix);
  std::size_t i = 0;
  if (entity.scope == config::Scope::tenant) {
    key += "t:";
    key += encode_component(values.at(0));
    key += ':';
    i = 1;
  } else {
    key += "g:";
  }
  key += entity.name;
  key += ':';
  key += entity.shape_hash;
  for (; i < values.size(); ++i) {
    key += ':';
    key += encode_component(values[i]);
  }
  return key;
}

}  // namespace sidecache::cache

namespace sidecache::cache {

std::string tenant_watermark(std::string_view prefix, std::string_view tenant) {
  return std::string(prefix) + "wm:t:" + encode_component(tenant);
}

std::string entity_tenant_watermark(std::string_view prefix, std::string_view tenant, std::string_view entity) {
  return std::string(prefix) + "wm:t:" + encode_component(tenant) + ":" + std::string(entity);
}

std::string entity_watermark(std::string_view prefix, std::string_view entity) {
  return std::string(prefix) + "wm:e:" + std::string(entity);
}

std::vector<std::string> read_keys(std::string_view prefix, const config::Entity& entity,
                                   const std::vector<std::string>& values, std::string value_key) {
  std::vector<std::string> keys;
  keys.reserve(4);
  keys.push_back(std::move(value_key));
  if (entity.scope == config::Scope::tenant) {
    keys.push_back(tenant_watermark(prefix, values.at(0)));
    keys.push_back(entity_tenant_watermark(prefix, values.at(0), entity.name));
  }
  keys.push_back(entity_watermark(prefix, entity.name));
  return keys;
}

}  // namespace sidecache::cache

namespace sidecache::cache {

std::string lease_key(std::string_view prefix, std::string_view value_key) {
  return std::string(prefix) + "ls:" + std::string(value_key.substr(prefix.size()));
}

}  // namespace sidecache::cache

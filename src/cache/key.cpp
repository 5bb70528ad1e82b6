#include "sidecache/cache/key.hpp"
#include "sidecache/cache/tags.hpp"

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

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;  // the encoder writes upper case only
}

// One component back from encode_component(); nullopt unless it is exactly
// what the encoder would have written.
std::optional<std::string> decode_component(std::string_view enc) {
  std::string out;
  out.reserve(enc.size());
  for (std::size_t i = 0; i < enc.size(); ++i) {
    if (enc[i] != '%') {
      out += enc[i];
      continue;
    }
    if (i + 2 >= enc.size()) return std::nullopt;
    int hi = hex_digit(enc[i + 1]), lo = hex_digit(enc[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  if (encode_component(out) != enc) return std::nullopt;
  return out;
}

}  // namespace

std::optional<std::vector<std::string>> parse_key(std::string_view prefix, const config::Entity& entity,
                                                  std::string_view key) {
  if (key.substr(0, prefix.size()) != prefix) return std::nullopt;
  key.remove_prefix(prefix.size());
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    std::size_t end = key.find(':', start);
    parts.push_back(key.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  const bool tenant = entity.scope == config::Scope::tenant;
  // t:<tenant>:<entity>:<shape>:<p...> or g:<entity>:<shape>:<p...>
  const std::size_t fixed = tenant ? 4 : 3;
  const std::size_t declared = entity.params.size() - (tenant ? 1 : 0);
  if (parts.size() != fixed + declared) return std::nullopt;
  if (parts[0] != (tenant ? "t" : "g")) return std::nullopt;
  std::size_t at = 1;
  std::vector<std::string> values;
  values.reserve(entity.params.size());
  if (tenant) {
    auto t = decode_component(parts[at++]);
    if (!t) return std::nullopt;
    values.push_back(std::move(*t));
  }
  if (parts[at++] != entity.name || parts[at++] != entity.shape_hash) return std::nullopt;
  for (; at < parts.size(); ++at) {
    auto v = decode_component(parts[at]);
    if (!v) return std::nullopt;
    values.push_back(std::move(*v));
  }
  return values;
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

std::string tag_watermark(std::string_view prefix, std::string_view tenant, std::string_view tag) {
  if (tenant.empty()) return std::string(prefix) + "wm:tag:" + encode_component(tag);
  return std::string(prefix) + "wm:tag:" + encode_component(tenant) + ":" + encode_component(tag);
}

std::vector<std::string> read_keys(std::string_view prefix, const config::Entity& entity,
                                   const std::vector<std::string>& values, std::string value_key) {
  std::vector<std::string> keys;
  keys.reserve(4 + entity.tags.size());
  keys.push_back(std::move(value_key));
  if (entity.scope == config::Scope::tenant) {
    keys.push_back(tenant_watermark(prefix, values.at(0)));
    keys.push_back(entity_tenant_watermark(prefix, values.at(0), entity.name));
  }
  keys.push_back(entity_watermark(prefix, entity.name));
  const std::string_view tenant = entity.scope == config::Scope::tenant ? std::string_view(values.at(0)) : std::string_view{};
  for (const auto& t : entity.tags) {
    if (t.from_row()) continue;
    if (auto tag = render_tag(t, values, [](std::string_view) { return std::optional<std::string>(); }))
      keys.push_back(tag_watermark(prefix, tenant, *tag));
  }
  return keys;
}

}  // namespace sidecache::cache

namespace sidecache::cache {

std::string lease_key(std::string_view prefix, std::string_view value_key) {
  return std::string(prefix) + "ls:" + std::string(value_key.substr(prefix.size()));
}

}  // namespace sidecache::cache

#include "sidecache/cache/tags.hpp"

#include <boost/json.hpp>

#include "sidecache/cache/key_layout.hpp"
#include "sidecache/config/tag_template.hpp"

namespace sidecache::cache {
namespace json = boost::json;

std::optional<std::string> column_text(const json::value* v) {
  if (!v) return std::nullopt;
  if (v->is_string()) return std::string(v->as_string());
  if (v->is_int64()) return std::to_string(v->as_int64());
  if (v->is_uint64()) return std::to_string(v->as_uint64());
  if (v->is_bool()) return v->as_bool() ? "true" : "false";
  return std::nullopt;
}

std::optional<std::string> render_tag(const config::TagTemplate& t, const std::vector<std::string>& values,
                                      const std::function<std::optional<std::string>(std::string_view)>& column) {
  std::string tag;
  for (const auto& p : t.parts) {
    if (p.param >= 0) {
      tag += values.at(static_cast<std::size_t>(p.param));
    } else if (!p.column.empty()) {
      auto v = column(p.column);
      if (!v) return std::nullopt;
      tag += *v;
    } else {
      tag += p.literal;
    }
  }
  if (!config::valid_tag(tag)) return std::nullopt;
  return tag;
}

std::vector<std::string> column_tag_keys(const KeyLayout& layout, const config::Entity& e,
                                         const std::vector<std::string>& values, std::string_view value_key,
                                         std::string_view row_json) {
  std::vector<std::string> keys;
  if (!e.column_tags()) return keys;
  boost::system::error_code ec;
  json::value row = json::parse(row_json, ec);
  if (ec || !row.is_object()) return keys;
  const json::object& o = row.as_object();
  auto column = [&](std::string_view name) { return column_text(o.if_contains(name)); };
  const std::string_view tenant = e.scope == config::Scope::tenant ? std::string_view(values.at(0)) : std::string_view{};
  for (const auto& t : e.tags) {
    if (!t.from_row()) continue;
    if (auto tag = render_tag(t, values, column)) {
      std::string k = layout.column_tag(tenant, *tag, value_key);
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(std::move(k));
    }
  }
  return keys;
}

}  // namespace sidecache::cache

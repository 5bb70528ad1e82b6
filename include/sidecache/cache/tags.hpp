#pragma once
// Rendering tag templates into tags, and tags into the watermark keys a
// value carries (docs/invalidation.md, "Tags"). Param tags are part of
// read_keys(); column tags are rendered from the filled row here, on the
// miss path only.
#include <boost/json/fwd.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sidecache/config/config.hpp"

namespace sidecache::cache {

class KeyLayout;

// A JSON scalar as key or tag text: a string as is, an integer in decimal,
// true/false. nullopt for null, a fraction, an object or an array (not a
// key value). The same text a request param of that value normalises to.
std::optional<std::string> column_text(const boost::json::value* v);

// The tag `t` gives: params from `values` (entity params order), columns
// from `column`. nullopt when a column has no value (absent, NULL) or the
// tag is not valid (config::valid_tag): no such tag is carried.
std::optional<std::string> render_tag(const config::TagTemplate& t, const std::vector<std::string>& values,
                                      const std::function<std::optional<std::string>(std::string_view)>& column);

// The watermarks of `e`'s column tags for a filled row (`row_json`, the
// value's body, stored under `value_key`), in the tenant values[0] for a
// tenant-scoped entity. Empty when the entity has none, or the row is not a
// JSON object.
std::vector<std::string> column_tag_keys(const KeyLayout& layout, const config::Entity& e,
                                         const std::vector<std::string>& values, std::string_view value_key,
                                         std::string_view row_json);

}  // namespace sidecache::cache

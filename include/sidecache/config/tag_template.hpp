#pragma once
// Parsing of tag templates ("project:{project_id}"): docs/entity-rules.md,
// "Tags". Pure logic; the loader reports the errors with file and line, the
// fuzz target tag_template feeds it anything.
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "sidecache/config/config.hpp"

namespace sidecache::config {

// The longest tag, as written or as given to POST /v1/invalidate.
inline constexpr std::size_t kMaxTagBytes = 256;

enum class TagSource {
  entity,       // an entity's `tags`: {param} or {row.column}
  written_row,  // an invalidate_on rule's `tags`: {column} of the written row
};

// Parses `text`. `param_index` gives a param's index, or -1 when there is no
// such param (entity templates only). `row_ok`: whether {row.column} may be
// used (result: row entities). On failure returns nullopt and says why in
// `why`, with the fix.
std::optional<TagTemplate> parse_tag_template(std::string_view text, TagSource source,
                                              const std::function<int(std::string_view)>& param_index, bool row_ok,
                                              std::string& why);

// Whether `tag` is a tag a template could render and the API accepts:
// 1..kMaxTagBytes bytes, no control bytes.
bool valid_tag(std::string_view tag);

}  // namespace sidecache::config

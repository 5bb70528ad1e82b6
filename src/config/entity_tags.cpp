#include "entity_tags.hpp"

namespace sidecache::config::detail {

void load_tags(const YAML::Node& node, const Entity& e, TagSource source, std::vector<TagTemplate>& out, FileCtx& ctx) {
  const char* example = source == TagSource::entity ? "tags: [\"project:{project_id}\", \"project:{row.project_id}\"]"
                                                    : "tags: [\"project:{project_id}\"] (columns of the written row)";
  if (!node.IsSequence()) {
    ctx.error(node, std::string("tags must be a list of templates, like ") + example);
    return;
  }
  if (node.size() > kMaxTags) {
    ctx.error(node, "at most " + std::to_string(kMaxTags) + " tags (each is read with every value); merge or drop some");
    return;
  }
  auto param_index = [&](std::string_view name) {
    for (std::size_t i = 0; i < e.params.size(); ++i)
      if (e.params[i].name == name) return static_cast<int>(i);
    return -1;
  };
  for (const auto& item : node) {
    auto text = ctx.scalar(item, "a tag");
    if (!text) continue;
    std::string why;
    auto t = parse_tag_template(*text, source, param_index, e.result == ResultShape::row, why);
    if (!t) {
      ctx.error(item, why);
      continue;
    }
    bool dup = std::any_of(out.begin(), out.end(), [&](const TagTemplate& o) { return o.text == t->text; });
    if (dup) {
      ctx.error(item, "tag '" + t->text + "' is listed twice; remove one");
      continue;
    }
    out.push_back(std::move(*t));
  }
}

}  // namespace sidecache::config::detail

#include "sidecache/config/tag_template.hpp"

#include "yaml_file.hpp"

namespace sidecache::config {

bool valid_tag(std::string_view tag) {
  if (tag.empty() || tag.size() > kMaxTagBytes) return false;
  for (unsigned char c : tag)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

std::optional<TagTemplate> parse_tag_template(std::string_view text, TagSource source,
                                              const std::function<int(std::string_view)>& param_index, bool row_ok,
                                              std::string& why) {
  const std::string quoted = "tag '" + std::string(text) + "'";
  if (text.empty()) {
    why = "a tag is empty; write one like \"project:{project_id}\"";
    return std::nullopt;
  }
  if (text.size() > kMaxTagBytes) {
    why = quoted.substr(0, 40) + "...' is longer than " + std::to_string(kMaxTagBytes) + " bytes; shorten it";
    return std::nullopt;
  }
  TagTemplate t;
  t.text = std::string(text);
  std::string literal;
  auto flush = [&] {
    if (literal.empty()) return;
    TagTemplate::Part p;
    p.literal = std::move(literal);
    t.parts.push_back(std::move(p));
    literal.clear();
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      why = quoted + " has a control character; tags are printable text";
      return std::nullopt;
    }
    if (c == '}') {
      why = quoted + " has a '}' without its '{'; a placeholder is written {name}";
      return std::nullopt;
    }
    if (c != '{') {
      literal += static_cast<char>(c);
      continue;
    }
    std::size_t close = text.find('}', i + 1);
    std::string_view name = close == std::string_view::npos ? std::string_view{} : text.substr(i + 1, close - i - 1);
    if (close == std::string_view::npos || name.find('{') != std::string_view::npos) {
      why = quoted + " has a '{' without its '}'; a placeholder is written {name}";
      return std::nullopt;
    }
    TagTemplate::Part p;
    if (source == TagSource::written_row) {
      if (name.substr(0, 4) == "row.") name.remove_prefix(4);  // the same column
      if (!detail::is_identifier(std::string(name), false)) {
        why = quoted + ": {" + std::string(name) + "} is not a column name; name a column of the written row, like {project_id}";
        return std::nullopt;
      }
      p.column = std::string(name);
    } else if (name.substr(0, 4) == "row.") {
      std::string_view col = name.substr(4);
      if (!row_ok) {
        why = quoted + " uses a result column, which only a 'result: row' entity has; use a param ({name}) instead";
        return std::nullopt;
      }
      if (!detail::is_identifier(std::string(col), false)) {
        why = quoted + ": {row." + std::string(col) + "} is not a column name; write it like {row.project_id}";
        return std::nullopt;
      }
      p.column = std::string(col);
    } else {
      int at = param_index(name);
      if (at < 0) {
        why = quoted + ": {" + std::string(name) + "} is not a param of this entity; name a declared param, or a " +
              "result column as {row." + std::string(name) + "}";
        return std::nullopt;
      }
      p.param = at;
    }
    flush();
    t.parts.push_back(std::move(p));
    i = close;
  }
  flush();
  return t;
}

}  // namespace sidecache::config

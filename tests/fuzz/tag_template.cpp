// Tag templates (entity files and invalidate_on rules), fed anything: the
// first byte picks where the template is written (and whether the entity
// has result columns), the rest is the template. What parses rebuilds to
// the text it came from, and renders only to tags the API would accept.
#include <cstdint>
#include <string>

#include "sidecache/cache/tags.hpp"
#include "sidecache/config/tag_template.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sidecache;
  if (size == 0) return 0;
  const auto source = data[0] & 1 ? config::TagSource::written_row : config::TagSource::entity;
  const bool row_ok = data[0] & 2;
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  static const std::vector<std::string> names = {"org_id", "a", "task_id"};
  auto index = [](std::string_view n) {
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i] == n) return static_cast<int>(i);
    return -1;
  };
  std::string why;
  auto t = config::parse_tag_template(text, source, index, row_ok, why);
  if (!t) {
    if (why.empty()) __builtin_trap();  // a refusal always says why
    return 0;
  }
  if (t->text != text) __builtin_trap();
  // Rebuilt from its parts: the same text ({row.x} in a rule is {x}).
  std::string rebuilt, expected = text;
  for (const auto& p : t->parts) {
    if (p.param >= 0) rebuilt += "{" + names.at(static_cast<std::size_t>(p.param)) + "}";
    else if (!p.column.empty()) rebuilt += source == config::TagSource::entity ? "{row." + p.column + "}" : "{" + p.column + "}";
    else if (p.literal.empty()) __builtin_trap();  // no empty parts
    else rebuilt += p.literal;
  }
  if (source == config::TagSource::written_row)
    for (std::size_t at; (at = expected.find("{row.")) != std::string::npos;) expected.erase(at + 1, 4);
  if (rebuilt != expected) __builtin_trap();
  if (!row_ok && source == config::TagSource::entity && t->from_row()) __builtin_trap();
  const std::vector<std::string> values = {"11111111-1111-1111-1111-111111111111", "x\ny", "7"};
  auto tag = cache::render_tag(*t, values, [](std::string_view c) -> std::optional<std::string> {
    if (c.size() % 2) return std::nullopt;  // a NULL column
    return std::string(c);
  });
  if (tag && !config::valid_tag(*tag)) __builtin_trap();
  return 0;
}

#include "sidecache/cache/params.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "sidecache/config/text.hpp"

namespace sidecache::cache {

std::optional<std::string> normalize(const config::ParamSpec& spec, std::string_view raw, std::string& why) {
  using config::ParamType;
  switch (spec.type) {
    case ParamType::uuid: {
      if (raw.size() != 36) { why = "must be a UUID like 123e4567-e89b-12d3-a456-426614174000"; return std::nullopt; }
      std::string out(raw);
      for (std::size_t i = 0; i < out.size(); ++i) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? out[i] != '-' : config::hex_value(out[i]) < 0) {
          why = "must be a UUID like 123e4567-e89b-12d3-a456-426614174000";
          return std::nullopt;
        }
        if (out[i] >= 'A' && out[i] <= 'F') out[i] = static_cast<char>(out[i] - 'A' + 'a');
      }
      return out;
    }
    case ParamType::integer: {
      std::string s(raw);
      bool ok = !s.empty() && s.size() <= 20;
      std::size_t start = (ok && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
      ok = ok && start < s.size() && std::all_of(s.begin() + static_cast<long>(start), s.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (ok) {
        errno = 0;
        char* end = nullptr;
        long long v = std::strtoll(s.c_str(), &end, 10);
        if (errno == 0 && *end == '\0') return std::to_string(v);
      }
      why = "must be a whole number between -9223372036854775808 and 9223372036854775807";
      return std::nullopt;
    }
    case ParamType::slug: {
      bool ok = !raw.empty() && raw.size() <= 128 && std::all_of(raw.begin(), raw.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
      });
      if (!ok) { why = "must be a slug: 1 to 128 of a-z, 0-9, '-' and '_'"; return std::nullopt; }
      return std::string(raw);
    }
    case ParamType::string: {
      std::size_t n = 0;
      if (!config::utf8_length(raw, n)) { why = "must be valid UTF-8"; return std::nullopt; }
      if (raw.find('\0') != std::string_view::npos) { why = "must not contain a NUL byte"; return std::nullopt; }
      if (n > spec.max_len) { why = "must be at most " + std::to_string(spec.max_len) + " characters"; return std::nullopt; }
      return std::string(raw);
    }
  }
  why = "unknown type";
  return std::nullopt;
}

std::variant<QueryPairs, ParamError> parse_query(std::string_view q) {
  QueryPairs out;
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    std::string name, value;
    if (!config::percent_decode(pair.substr(0, eq), name, true))
      return ParamError{"bad_param", std::string(pair.substr(0, eq)), "parameter name has a malformed %-escape"};
    if (eq != std::string_view::npos && !config::percent_decode(pair.substr(eq + 1), value, true))
      return ParamError{"bad_param", name, "value of '" + name + "' has a malformed %-escape"};
    out.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

std::variant<std::vector<std::string>, ParamError> bind_params(const config::Entity& entity, const QueryPairs& query) {
  std::vector<std::string> values(entity.params.size());
  std::vector<bool> seen(entity.params.size(), false);
  for (const auto& pair : query) {
    const std::string& name = pair.first;
    const std::string& raw = pair.second;
    auto it = std::find_if(entity.params.begin(), entity.params.end(), [&](const auto& p) { return p.name == name; });
    if (it == entity.params.end()) {
      std::string allowed;
      for (const auto& p : entity.params) allowed += (allowed.empty() ? "" : ", ") + p.name;
      return ParamError{"unknown_param", name,
                        "entity '" + entity.name + "' has no parameter '" + name + "'" +
                            (allowed.empty() ? std::string(" (it takes none)") : " (it takes: " + allowed + ")")};
    }
    std::size_t i = static_cast<std::size_t>(it - entity.params.begin());
    if (seen[i]) return ParamError{"bad_param", name, "parameter '" + name + "' is given more than once"};
    seen[i] = true;
    std::string why;
    auto v = normalize(*it, raw, why);
    if (!v) return ParamError{"bad_param", name, "parameter '" + name + "' " + why};
    values[i] = std::move(*v);
  }
  for (std::size_t i = 0; i < entity.params.size(); ++i) {
    if (!seen[i]) {
      const auto& p = entity.params[i];
      return ParamError{"missing_param", p.name,
                        "parameter '" + p.name + "' (" + config::to_string(p.type) + ") is required" +
                            (p.is_tenant ? " for tenant-scoped entity '" + entity.name + "'" : std::string())};
    }
  }
  return values;
}

}  // namespace sidecache::cache

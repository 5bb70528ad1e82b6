#include "sidecache/config/sql_params.hpp"

#include <algorithm>

namespace sidecache::config {
namespace {

bool ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool ident_char(char c) { return ident_start(c) || (c >= '0' && c <= '9'); }

// Length of a dollar-quote tag starting at s[i] == '$' ("$tag$" or "$$"), or 0.
std::size_t dollar_tag_len(std::string_view s, std::size_t i) {
  std::size_t j = i + 1;
  if (j < s.size() && s[j] == '$') return 2;
  if (j >= s.size() || !ident_start(s[j])) return 0;
  while (j < s.size() && ident_char(s[j])) ++j;
  if (j < s.size() && s[j] == '$') return j - i + 1;
  return 0;
}

}  // namespace

RewrittenSql rewrite_named_params(std::string_view s) {
  RewrittenSql out;
  out.sql.reserve(s.size());
  std::size_t i = 0;
  auto copy_until = [&](std::size_t end) {
    out.sql.append(s.substr(i, end - i));
    i = end;
  };
  while (i < s.size()) {
    char c = s[i];
    if (c == '\'') {
      // Standard string; E'..' strings treat backslash as an escape.
      bool escapes = i > 0 && (s[i - 1] == 'E' || s[i - 1] == 'e');
      std::size_t j = i + 1;
      while (j < s.size()) {
        if (escapes && s[j] == '\\') { j += 2; continue; }
        if (s[j] == '\'') {
          if (j + 1 < s.size() && s[j + 1] == '\'') { j += 2; continue; }
          break;
        }
        ++j;
      }
      copy_until(std::min(j + 1, s.size()));
    } else if (c == '"') {
      std::size_t j = s.find('"', i + 1);
      copy_until(j == std::string_view::npos ? s.size() : j + 1);
    } else if (c == '-' && i + 1 < s.size() && s[i + 1] == '-') {
      std::size_t j = s.find('\n', i);
      copy_until(j == std::string_view::npos ? s.size() : j);
    } else if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
      int depth = 0;
      std::size_t j = i;
      while (j < s.size()) {
        if (s.compare(j, 2, "/*") == 0) { ++depth; j += 2; }
        else if (s.compare(j, 2, "*/") == 0) { j += 2; if (--depth == 0) break; }
        else ++j;
      }
      copy_until(std::min(j, s.size()));
    } else if (c == '$' && dollar_tag_len(s, i) > 0) {
      std::size_t tl = dollar_tag_len(s, i);
      std::string_view tag = s.substr(i, tl);
      std::size_t j = s.find(tag, i + tl);
      copy_until(j == std::string_view::npos ? s.size() : j + tl);
    } else if (c == '$' && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '9') {
      out.positional.push_back(i);
      out.sql += c;
      ++i;
    } else if (c == ':' && i + 1 < s.size() && s[i + 1] == ':') {
      copy_until(i + 2);  // a :: cast
    } else if (c == ':' && i + 1 < s.size() && ident_start(s[i + 1])) {
      std::size_t j = i + 1;
      while (j < s.size() && ident_char(s[j])) ++j;
      std::string name(s.substr(i + 1, j - i - 1));
      out.uses.push_back({name, i});
      auto it = std::find(out.order.begin(), out.order.end(), name);
      std::size_t n;
      if (it == out.order.end()) {
        out.order.push_back(name);
        n = out.order.size();
      } else {
        n = static_cast<std::size_t>(it - out.order.begin()) + 1;
      }
      out.sql += '$';
      out.sql += std::to_string(n);
      i = j;
    } else {
      out.sql += c;
      ++i;
    }
  }
  return out;
}

}  // namespace sidecache::config

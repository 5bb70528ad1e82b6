#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace sidecache::config {

// A named placeholder (:name) found in SQL text.
struct SqlParamUse {
  std::string name;
  std::size_t offset;  // byte offset of the ':' in the original text
};

// Result of rewriting :name placeholders to $1..$n.
struct RewrittenSql {
  std::string sql;                 // with $n in place of each :name
  std::vector<std::string> order;  // order[i] is the name bound to $(i+1)
  std::vector<SqlParamUse> uses;   // every occurrence, in text order
  std::vector<std::size_t> positional;  // offsets of $1-style params written by hand (refused by the loader)
};

// Rewrites :name placeholders to positional $n parameters. The same name
// always gets the same number. Text inside '...' / E'...' strings, "quoted"
// identifiers, $tag$ dollar quotes, -- and /* */ comments, and :: casts is
// left alone. Names are [A-Za-z_][A-Za-z0-9_]*.
RewrittenSql rewrite_named_params(std::string_view sql);

}  // namespace sidecache::config

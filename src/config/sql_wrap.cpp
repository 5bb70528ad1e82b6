#include "sql_wrap.hpp"

#include <cctype>

#include "sidecache/config/text.hpp"

namespace sidecache::config::detail {
namespace {

std::string fnv_hex(std::string_view data, int hex_digits) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  std::string out;
  append_hex(out, h >> (64 - 4 * hex_digits), hex_digits);
  return out;
}

}  // namespace

std::string trim_sql(std::string s) {
  while (!s.empty() && (std::isspace(static_cast<unsigned char>(s.back())) || s.back() == ';')) s.pop_back();
  std::size_t b = 0;
  while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  return s.substr(b);
}

std::string wrap_query(const std::string& inner, ResultShape shape) {
  // The wrapper's row alias must not be a column name of the user's query
  // (json_agg(q) would aggregate a column "q" instead of the row).
  if (shape == ResultShape::row)
    return "SELECT row_to_json(_sidecache_row)::text FROM (\n" + inner + "\n) _sidecache_row LIMIT 2";
  return "SELECT coalesce(json_agg(_sidecache_row), '[]'::json)::text FROM (\n" + inner + "\n) _sidecache_row";
}

std::string wrap_batch_query(const std::string& inner, const std::string& key_column) {
  return "SELECT (_sidecache_row.\"" + key_column + "\")::text, row_to_json(_sidecache_row)::text FROM (\n" + inner +
         "\n) _sidecache_row";
}

void name_statement(Entity& e) {
  std::string shape = std::string(e.result == ResultShape::row ? "row" : "rows") + '\0' + e.query;
  for (const auto& p : e.params) shape += std::string("\0", 1) + p.name + '=' + to_string(p.type);
  // Tags change what a value carries and which invalidations cover it: a
  // value stored under other tags is not read.
  for (const auto& t : e.tags) shape += std::string("\0tag ", 5) + t.text;
  e.shape_hash = fnv_hex(shape, 8);
  e.statement = "sc_" + e.name + "_" + e.shape_hash;
  if (e.batch) e.batch->statement = "scb_" + e.name + "_" + fnv_hex(e.batch->query, 8);
}

}  // namespace sidecache::config::detail

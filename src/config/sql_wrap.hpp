#pragma once
// How an entity's SQL becomes the query sidecache runs: trimmed, wrapped so
// PostgreSQL returns the JSON body (row_to_json / json_agg), and named by a
// hash of its shape (statement names and keys change when the shape does).
// Private to the config module.
#include <string>
#include <string_view>

#include "sidecache/config/config.hpp"

namespace sidecache::config::detail {

// Removes trailing whitespace and semicolons so the SQL can be wrapped.
std::string trim_sql(std::string s);
// The wrapped query for `inner` (already rewritten to $n parameters).
std::string wrap_query(const std::string& inner, ResultShape shape);
// The batch form's query: each row as (its key column as text, its JSON),
// the JSON built exactly as wrap_query() builds a row entity's.
std::string wrap_batch_query(const std::string& inner, const std::string& key_column);
// Sets e.shape_hash and e.statement from e's result shape, query and params.
void name_statement(Entity& e);

}  // namespace sidecache::config::detail

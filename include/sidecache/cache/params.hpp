#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "sidecache/config/config.hpp"

namespace sidecache::cache {

// Why a request's parameters were refused; maps to a 400 answer.
struct ParamError {
  std::string code;   // missing_param | unknown_param | bad_param
  std::string param;  // the parameter at fault
  std::string message;
};

// Validates and normalises one value against its declared type.
// uuid: lower-cased canonical 8-4-4-4-12 form; int: canonical decimal (int64);
// slug: [a-z0-9_-], 1..128; string: valid UTF-8 without NUL, at most max_len
// code points. Returns the normalised value or a reason.
std::optional<std::string> normalize(const config::ParamSpec& spec, std::string_view raw, std::string& why);

// Decoded query-string pairs, in order.
using QueryPairs = std::vector<std::pair<std::string, std::string>>;

// Parses "a=1&b=x%20y" with percent-decoding ('+' is a space). Returns the
// name of the offending pair on a malformed escape.
std::variant<QueryPairs, ParamError> parse_query(std::string_view query);

// Matches the query against an entity's params: every declared param exactly
// once, nothing else. Values come back normalised, in entity.params order.
std::variant<std::vector<std::string>, ParamError> bind_params(const config::Entity& entity, const QueryPairs& query);

}  // namespace sidecache::cache

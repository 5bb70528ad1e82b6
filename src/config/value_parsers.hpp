#pragma once
// Typed values from their text, with the message an operator needs when the
// text is wrong: what was expected and an example. Each returns "" when the
// value is good, else the message (starting with `what`). Shared by the
// settings table and the entity files. Private to the config module.
#include <string>

#include "sidecache/config/config.hpp"

namespace sidecache::config::detail {

std::string duration_value(const std::string& what, const std::string& text, bool positive, microseconds& out);
std::string integer_value(const std::string& what, const std::string& text, long long lo, long long hi, long long& out);
// "10%" or a fraction like 0.1, within [0, 1].
std::string fraction_value(const std::string& what, const std::string& text, double& out);
std::string bool_value(const std::string& what, const std::string& text, bool& out);
std::string param_type_value(const std::string& what, const std::string& text, bool allow_string, ParamType& out);

}  // namespace sidecache::config::detail

#include "value_parsers.hpp"

#include <cerrno>
#include <cstdlib>

#include "sidecache/config/duration.hpp"

namespace sidecache::config::detail {

std::string duration_value(const std::string& what, const std::string& text, bool positive, microseconds& out) {
  auto d = parse_duration(text);
  if (!d) return what + ": '" + text + "' is not a duration; write it like 50ms, 2s, 15m or 1h";
  if (positive && d->count() <= 0) return what + " must be greater than zero, got '" + text + "'";
  out = *d;
  return {};
}

std::string integer_value(const std::string& what, const std::string& text, long long lo, long long hi, long long& out) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0) return what + ": '" + text + "' is not a whole number";
  if (v < lo || v > hi)
    return what + " must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " + text;
  out = v;
  return {};
}

std::string fraction_value(const std::string& what, const std::string& text, double& out) {
  std::string t = text;
  bool pct = !t.empty() && t.back() == '%';
  if (pct) t.pop_back();
  char* end = nullptr;
  double v = std::strtod(t.c_str(), &end);
  if (t.empty() || *end != '\0') return what + ": '" + text + "' is not a percentage; write it like 10%";
  if (pct) v /= 100.0;
  if (v < 0.0 || v > 1.0) return what + " must be between 0% and 100%, got '" + text + "'";
  out = v;
  return {};
}

std::string bool_value(const std::string& what, const std::string& text, bool& out) {
  if (text != "true" && text != "false") return what + " must be true or false";
  out = text == "true";
  return {};
}

std::string param_type_value(const std::string& what, const std::string& text, bool allow_string, ParamType& out) {
  if (text == "uuid") out = ParamType::uuid;
  else if (text == "int") out = ParamType::integer;
  else if (text == "slug") out = ParamType::slug;
  else if (text == "string" && allow_string) out = ParamType::string;
  else return what + ": unknown type '" + text + "'; use one of uuid, int, slug" + (allow_string ? ", string" : "");
  return {};
}

}  // namespace sidecache::config::detail

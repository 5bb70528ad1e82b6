#include "sidecache/cache/error_body.hpp"

#include <boost/json.hpp>

#include "sidecache/config/text.hpp"

namespace sidecache::cache {

std::string error_body(std::string_view code, std::string_view message,
                       const std::vector<std::pair<std::string, std::string>>& extra) {
  namespace json = boost::json;
  using config::valid_utf8;
  json::object o;
  o["error"] = valid_utf8(code);
  for (const auto& [k, v] : extra) o[valid_utf8(k)] = valid_utf8(v);
  o["message"] = valid_utf8(message);
  return json::serialize(o);
}

}  // namespace sidecache::cache

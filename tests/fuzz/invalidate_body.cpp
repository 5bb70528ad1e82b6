// The POST /v1/invalidate body, and the trigger notification payload: any
// bytes give a 400 with a JSON error, or a well-formed invalidation.
#include <boost/json.hpp>
#include <cstdint>

#include "fixture.hpp"
#include "sidecache/app/notify.hpp"
#include "sidecache/http/router.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& cfg = sidecache::fuzz::fixture();
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto r = sidecache::http::parse_invalidation(cfg, body);
  if (r.kind == sidecache::http::Route::Kind::answer) {
    if (r.answer.status != 400) __builtin_trap();
    if (!boost::json::parse(r.answer.body).as_object().contains("error")) __builtin_trap();
  } else if (r.invalidation.scope == sidecache::http::Invalidation::Scope::key && r.invalidation.request.key.empty()) {
    __builtin_trap();
  }
  std::string error;
  auto invs = sidecache::app::invalidations_for(cfg, body, error);
  for (const auto& i : invs)
    if (!i.entity) __builtin_trap();
  return 0;
}

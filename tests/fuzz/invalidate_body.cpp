// The POST /v1/invalidate body, the trigger notification payload and the L1
// invalidation message: any bytes give a 400 with a JSON error, or a
// well-formed invalidation; an L1 message parses into non-empty keys
// without newlines, or not at all.
#include <boost/json.hpp>
#include <cstdint>

#include "fixture.hpp"
#include "sidecache/cache/notification.hpp"
#include "sidecache/cache/l1.hpp"
#include "sidecache/config/tag_template.hpp"
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
  } else if (r.invalidation.scope == sidecache::http::Invalidation::Scope::tag && !sidecache::config::valid_tag(r.invalidation.tag)) {
    __builtin_trap();
  }
  std::string error;
  auto invs = sidecache::cache::invalidations_for(cfg, body, error);
  for (const auto& i : invs) {
    if (!i.entity && i.scope != sidecache::http::Invalidation::Scope::tag) __builtin_trap();
    if (i.scope == sidecache::http::Invalidation::Scope::tag && !sidecache::config::valid_tag(i.tag)) __builtin_trap();
  }
  if (auto m = sidecache::cache::parse_l1_message(body)) {
    if (m->keys.empty()) __builtin_trap();
    for (auto k : m->keys)
      if (k.empty() || k.find('\n') != std::string_view::npos) __builtin_trap();
  }
  return 0;
}

// The POST /v1/batch body: any bytes give a 400 or 413 with a JSON error, or
// at most http.max_batch items, each either a 400 with a JSON error or a
// request whose key is the one build_key gives for its values, under the
// tenant the item named (the isolation rule: a batch item never reads a key
// of another tenant).
#include <boost/json.hpp>
#include <cstdint>

#include "fixture.hpp"
#include "sidecache/cache/key.hpp"
#include "sidecache/http/router.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& cfg = sidecache::fuzz::fixture();
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto r = sidecache::http::parse_batch(cfg, body);
  if (r.kind == sidecache::http::Route::Kind::answer) {
    if (r.answer.status != 400 && r.answer.status != 413) __builtin_trap();
    if (!boost::json::parse(r.answer.body).as_object().contains("error")) __builtin_trap();
    return 0;
  }
  if (r.kind != sidecache::http::Route::Kind::batch || r.batch.size() > cfg.http.max_batch) __builtin_trap();
  for (const auto& item : r.batch) {
    if (!item.request) {
      if (item.error.status != 400) __builtin_trap();
      if (!boost::json::parse(item.error.body).as_object().contains("error")) __builtin_trap();
      continue;
    }
    const auto& req = *item.request;
    if (!req.entity || req.values.size() != req.entity->params.size()) __builtin_trap();
    if (req.key != sidecache::cache::build_key(cfg.key_prefix, *req.entity, req.values)) __builtin_trap();
    if (req.entity->scope == sidecache::config::Scope::tenant &&
        req.key.rfind(cfg.key_prefix + "t:" + sidecache::cache::encode_component(req.values[0]) + ":", 0) != 0)
      __builtin_trap();
  }
  return 0;
}

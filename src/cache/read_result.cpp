// What a read's result says about itself: its Cache-Status and its metrics
// outcome, both from the result's kind (nothing parses a header back).
#include "sidecache/cache/read_path.hpp"

namespace sidecache::cache {

std::string cache_status(const ReadResult& r) {
  std::string detail = cache_status_detail(r);
  return detail.empty() ? "sidecache" : "sidecache; " + detail;
}

std::string cache_status_detail(const ReadResult& r) {
  using K = ReadResult::Kind;
  // Whether a fill was stored, as far as is known.
  auto store = [&r](std::string fwd) {
    if (r.stored) return fwd + "; stored";
    if (r.too_large) return fwd + "; detail=too-large";
    if (r.store_unknown) return fwd + "; detail=store-unknown";
    return fwd;
  };
  switch (r.kind) {
    case K::hit: return "hit";
    case K::l1_hit: return "hit; detail=l1";
    // RFC 9211: served from the cache (hit) and stale (fwd=stale); detail says why.
    case K::stale_revalidating: return "hit; fwd=stale; detail=revalidating";
    case K::stale_error: return "hit; fwd=stale; detail=error";
    case K::miss: return store("fwd=miss");
    case K::collapsed: return "fwd=miss; collapsed";
    case K::bypass: return store("fwd=request");
  }
  return "";
}

metrics::Outcome outcome_of(const ReadResult& r) {
  using K = ReadResult::Kind;
  if (r.kind == K::stale_revalidating || r.kind == K::stale_error) return metrics::Outcome::stale;
  if (r.status >= 500) return metrics::Outcome::error;
  switch (r.kind) {
    case K::hit:
    case K::l1_hit: return metrics::Outcome::hit;
    case K::collapsed: return metrics::Outcome::collapsed;
    case K::bypass: return metrics::Outcome::bypass;
    default: return metrics::Outcome::miss;
  }
}

}  // namespace sidecache::cache

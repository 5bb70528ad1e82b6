// What a read's result says about itself: its Cache-Status and its metrics
// outcome, both from the result's kind (nothing parses a header back).
#include "sidecache/cache/read_path.hpp"

namespace sidecache::cache {

std::string cache_status(const ReadResult& r) {
  using K = ReadResult::Kind;
  switch (r.kind) {
    case K::hit: return "sidecache; hit";
    case K::l1_hit: return "sidecache; hit; detail=l1";
    // RFC 9211: served from the cache (hit) and stale (fwd=stale); detail says why.
    case K::stale_revalidating: return "sidecache; hit; fwd=stale; detail=revalidating";
    case K::stale_error: return "sidecache; hit; fwd=stale; detail=error";
    case K::miss:
      return r.stored ? "sidecache; fwd=miss; stored" : r.too_large ? "sidecache; fwd=miss; detail=too-large" : "sidecache; fwd=miss";
    case K::collapsed: return "sidecache; fwd=miss; collapsed";
    case K::bypass:
      return r.stored ? "sidecache; fwd=request; stored"
                      : r.too_large ? "sidecache; fwd=request; detail=too-large" : "sidecache; fwd=request";
  }
  return "sidecache";
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

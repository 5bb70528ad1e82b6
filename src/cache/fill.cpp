// The fill: run the entity's query (under its max_concurrent_fills cap),
// turn the result into a value, and store it unless an invalidation came
// after the fill began.
#include <spdlog/spdlog.h>

#include "sidecache/cache/error_body.hpp"
#include "sidecache/cache/random.hpp"
#include "sidecache/cache/read_path.hpp"
#include "sidecache/cache/tags.hpp"
#include "sidecache/cache/wall_clock.hpp"

namespace sidecache::cache {

net::awaitable<FillOutcome> ReadPath::fill_and_store(Store& store, const EntityRequest& req,
                                                     const std::vector<std::string>& keys, const std::string& lease,
                                                     const std::string& token, const Begin& begin, Flights::Call* call) {
  // The invalidations the begin saw are what the answer must include; one
  // that comes later stops the commit instead. Without the store, nothing
  // is known about them.
  std::optional<std::uint64_t> floor;
  if (begin.ok) floor = begin.lookup.floor_lsn;
  FillOutcome o = co_await fill(req, begin.ok ? begin.start_us : 0, floor);
  // From here on, a request that joins may have seen an invalidation the
  // commit below will not: it must read the store itself.
  if (call) call->seal();
  if (!begin.ok) co_return o;
  if (o.status == 200 || o.status == 404) {
    std::string_view body = o.status == 200 ? std::string_view(o.body) : std::string_view{};
    // Column tags, from the row just read: stored with the value, and
    // checked by the commit like its other watermarks (a tag invalidated
    // since the fill began stops it).
    if (o.status == 200 && req.entity->column_tags())
      o.tag_keys = column_tag_keys(req.snapshot->keys, *req.entity, req.values, req.key, body);
    std::size_t tag_bytes = 0;
    for (const auto& k : o.tag_keys) tag_bytes += k.size() + 1;
    // Checked before encoding: an over-size value is never copied again.
    if (kValueHeaderSize + body.size() + tag_bytes > req.entity->max_value_bytes) {
      // Answered, not stored: reading it back would outlast redis.timeout.
      o.too_large = true;
      warn_too_large(*req.entity, kValueHeaderSize + body.size() + tag_bytes);
    } else {
      std::string bytes = encode_value(o.header, body, o.tag_keys);
      std::uint64_t ttl_ms = redis_ttl_ms(o.header, *req.entity);
      std::vector<std::string> with_tags;
      if (!o.tag_keys.empty()) {
        with_tags = keys;
        with_tags.insert(with_tags.end(), o.tag_keys.begin(), o.tag_keys.end());
      }
      // The commit releases the lease itself, whatever it decides.
      Commit c = co_await store.commit(req.snapshot->keys, o.tag_keys.empty() ? keys : with_tags, lease, token, begin,
                                       req.snapshot->max_fill_age_us, bytes, ttl_ms);
      switch (c) {
        case Commit::stored: o.stored = true; break;
        case Commit::invalidated: spdlog::debug("cache: {} was invalidated while it was read; not stored", req.key); break;
        case Commit::too_old: spdlog::warn("cache: the fill of {} took too long to be stored", req.key); break;
        case Commit::error: spdlog::debug("redis: storing {} failed; answered without storing", req.key); break;
        case Commit::unknown:
          o.store_unknown = true;
          spdlog::debug("redis: storing {} got no answer in time; it may or may not be stored", req.key);
          break;
      }
      co_return o;
    }
  }
  // Nothing is stored (a failed fill, or a value too large): let a waiting process try.
  if (begin.leased) co_await store.release(lease, token);
  co_return o;
}

void ReadPath::warn_too_large(const config::Entity& e, std::size_t bytes) {
  if (metrics_) metrics_->value_too_large(e.name);
  {
    std::lock_guard lock(warned_mu_);
    if (!warned_large_.insert(e.name).second) return;
  }
  spdlog::warn("cache: a value of entity '{}' is {} bytes, over max_value_bytes ({}): it is answered but not stored; "
               "raise max_value_bytes (for this entity, or for all) or make the result smaller (logged once per entity)",
               e.name, bytes, e.max_value_bytes);
}

net::awaitable<FillOutcome> ReadPath::fill(const EntityRequest& req, std::uint64_t start_us,
                                           std::optional<std::uint64_t> floor) {
  const config::Entity& e = *req.entity;
  const std::uint64_t began_wall = wall_us();
  std::vector<std::string> args = query_args(e, req.values);
  // The per-entity cap: beyond it, a fast 503 rather than a longer queue.
  bool capped = e.max_concurrent_fills > 0;
  if (capped) {
    std::lock_guard lock(fills_mu_);
    std::size_t& n = fills_in_flight_[e.name];
    if (n >= e.max_concurrent_fills) {
      FillOutcome busy;
      busy.status = 503;
      busy.body = error_body("unavailable", "entity '" + e.name + "' has max_concurrent_fills fills running");
      busy.retry = true;
      co_return busy;
    }
    ++n;
  }
  // Released on every path, an exception from the filler included.
  struct Uncap {
    ReadPath* self;
    const std::string* entity;
    ~Uncap() {
      if (!entity) return;
      std::lock_guard lock(self->fills_mu_);
      --self->fills_in_flight_[*entity];
    }
  } uncap{this, capped ? &e.name : nullptr};
  // (Not `c ? co_await a : co_await b`: gcc 12 destroys the result twice.)
  pg::FillResult fr;
  if (req.batch_group && e.batch) fr = co_await fill_in_group(req, floor);
  else fr = co_await filler_.fill(e, std::move(args), floor);
  if (metrics_) metrics_->fill(e.name, std::chrono::duration<double>(fr.took).count());

  FillOutcome o;
  o.read_began_us = start_us;
  o.read_began_wall_us = began_wall;
  o.header.created_us = start_us ? start_us : wall_us();
  o.header.fill_us = static_cast<std::uint32_t>(std::min<std::int64_t>(fr.took.count(), UINT32_MAX));
  using S = pg::FillResult::Status;
  switch (fr.status) {
    case S::ok:
      o.status = 200;
      o.body = std::move(fr.json);
      o.header.soft_expiry_us =
          o.header.created_us + static_cast<std::uint64_t>(jittered(e.ttl, e.ttl_jitter, random_share()).count());
      break;
    case S::not_found:
      o.status = 404;
      o.body = error_body("not_found", "no " + e.name + " matches these parameters", {{"entity", e.name}});
      o.header.flags |= ValueHeader::kNegative;
      o.header.soft_expiry_us = o.header.created_us + static_cast<std::uint64_t>(e.negative_ttl.count());
      break;
    case S::unavailable:
    case S::behind:  // (the filler reads the primary then; never seen here)
      o.status = 503;
      o.body = error_body("unavailable", fr.message);
      o.retry = true;
      break;
    case S::timeout:
      o.status = 504;
      o.body = error_body("timeout", fr.message);
      break;
    case S::error:
      o.status = 500;
      o.body = error_body("query_failed", fr.message, {{"entity", e.name}});
      break;
  }
  co_return o;
}

}  // namespace sidecache::cache

// ReadPath's hits: a value found in the store (or L1) is served, maybe
// refreshed early (XFetch), copied into L1 and sampled by the audit. The
// misses and fills are in read_path.cpp and fill.cpp.
#include "sidecache/cache/audit.hpp"
#include "sidecache/cache/early_refresh.hpp"
#include "sidecache/cache/random.hpp"
#include "sidecache/cache/read_path.hpp"
#include "sidecache/cache/wall_clock.hpp"

namespace sidecache::cache {

using K = ReadResult::Kind;

bool ReadPath::audited(const Snapshot& s) const {
  // With audit.sample 0 (the default) a hit pays one comparison.
  return auditor_ && s.cfg->audit.enabled() && Auditor::sampled(s.cfg->audit, random_unit());
}

void ReadPath::audit(const EntityRequest& req, unsigned worker, const ValueHeader& h, std::string_view body,
                     net::any_io_executor ex) {
  AuditCase c;
  c.req = req;
  c.header = h;
  if (!h.negative()) c.body.assign(body);  // a copy, for the sampled hit only
  auditor_->offer(std::move(c), worker, std::move(ex));
}

ReadResult ReadPath::serve_hit(const EntityRequest& req, unsigned worker, const std::vector<std::string>& keys,
                               const NearCache::Ticket* ticket, Lookup& seen, std::uint64_t now, net::any_io_executor ex) {
  const config::Entity& e = *req.entity;
  if (e.early_refresh_beta > 0 &&
      xfetch_due(now, seen.header.soft_expiry_us, seen.header.fill_us, e.early_refresh_beta, draw_()))
    spawn_refresh(req, worker, ex);
  if (ticket) l1_put(req, *ticket, keys, seen.tag_keys, seen.header, seen.body);
  if (audited(*req.snapshot)) audit(req, worker, seen.header, seen.body, ex);
  return cached_result(K::hit, e, seen.header, std::move(seen.body), now);
}

void ReadPath::l1_put(const EntityRequest& req, const NearCache::Ticket& t, const std::vector<std::string>& keys,
                      const std::vector<std::string>& tag_keys, const ValueHeader& h, std::string_view body) {
  const config::Entity& e = *req.entity;
  auto now = NearCache::Clock::now();
  std::uint64_t wall = wall_us();
  if (h.soft_expiry_us <= wall) return;
  auto life = std::min<std::chrono::microseconds>(e.l1_ttl, std::chrono::microseconds(h.soft_expiry_us - wall));
  // The tenant, for l1.max_tenant_share: a tenant-scoped entity's first value.
  std::string_view tenant = e.scope == config::Scope::tenant ? std::string_view(req.values.at(0)) : std::string_view{};
  const KeyLayout& layout = req.snapshot->keys;
  if (tag_keys.empty() && !layout.cluster()) {
    l1_->put(t, keys, h, body, now + life, now, tenant);
    return;
  }
  // On a cluster, the slot's copy of an all-tenant mark is recorded as the
  // mark: that is what the invalidation's one message names.
  std::vector<std::string> all;
  all.reserve(keys.size() + tag_keys.size());
  for (const auto& k : keys) all.push_back(layout.l1_key(k));
  for (const auto& k : tag_keys) all.push_back(layout.l1_key(k));
  l1_->put(t, all, h, body, now + life, now, tenant);
}

}  // namespace sidecache::cache

// Rows of the settings table for fairness between tenants and for the
// staleness audit (docs/operations.md, "Noisy tenants" and "Staleness
// audit").
#include "setting_rows.hpp"

namespace sidecache::config::detail {

void add_tenant_settings(std::vector<Setting>& t) {
  const auto A = OnReload::applies, R = OnReload::restart;
  t.push_back(row("tenants.max_concurrent_fills", "integer 0..100000", "0", A,
                  "Fills of one tenant that may run at once in a PostgreSQL pool (0: no cap); an entity file may set its own (`tenants: { max_concurrent_fills: N }`). Global entities count as one tenant. The pool's queue is round robin over tenants either way.",
                  [](auto& c) -> auto& { return c.tenants.max_concurrent_fills; }, whole<std::size_t>(0, 100000)));
  t.push_back(row("tenants.max_queued_fills", "integer 0..1000000", "0", R,
                  "Fills of one tenant that may wait for a connection, per pool; beyond, that tenant's new fills answer 503 with Retry-After at once (0: only postgres.queue_limit bounds them).",
                  [](auto& c) -> auto& { return c.tenants.max_queued_fills; }, whole<std::size_t>(0, 1000000)));
  t.push_back(row("tenants.fair_queue", "true | false", "true", R,
                  "Round robin over per-tenant queues. `false` puts every fill in one FIFO and ignores the two limits above (for comparison runs only).",
                  [](auto& c) -> auto& { return c.tenants.fair_queue; }, boolean()));
  t.push_back(row("l1.max_tenant_share", "percentage", "100%", R,
                  "No tenant holds more than this share of l1.max_bytes (enforced per L1 shard); a tenant at its share evicts its own oldest copies, not other tenants'.",
                  [](auto& c) -> auto& { return c.l1.max_tenant_share; },
                  [](const std::string& k, const std::string& v, const std::string&, double& out) {
                    std::string why = fraction_value(k, v, out);
                    if (why.empty() && out <= 0.0) return k + " must be above 0%; write it like 25%";
                    return why;
                  }));
  t.push_back(row("metrics.top_tenants", "integer 0..1000", "10", R,
                  "Per-tenant series (`sidecache_tenant_fills_total`, `sidecache_tenant_rejections_total`) only for this many tenants, the busiest by fills and rejections; the rest count under `tenant=\"(other)\"`.",
                  [](auto& c) -> auto& { return c.metrics.top_tenants; }, whole<std::size_t>(0, 1000)));
}

void add_audit_settings(std::vector<Setting>& t) {
  const auto A = OnReload::applies;
  t.push_back(row("audit.sample", "percentage or fraction (0.001)", "0", A,
                  "Share of hits re-read from PostgreSQL off the request path and compared with the bytes served (0: off). See [operations.md](operations.md#staleness-audit).",
                  [](auto& c) -> auto& { return c.audit.sample; },
                  [](const std::string& k, const std::string& v, const std::string&, double& out) {
                    return fraction_value(k, v, out);
                  }));
  t.push_back(row("audit.max_per_second", "integer 1..10000", "20", A, "Audit queries per process per second, at most; sampled hits beyond are not audited.",
                  [](auto& c) -> auto& { return c.audit.max_per_second; }, whole<unsigned>(1, 10000)));
  t.push_back(row("audit.grace", "duration", "2s", A,
                  "How long after a re-read that differs the audit waits for an invalidation covering the key to be recorded before it calls the value stale.",
                  [](auto& c) -> auto& { return c.audit.grace; }, us()));
}

}  // namespace sidecache::config::detail

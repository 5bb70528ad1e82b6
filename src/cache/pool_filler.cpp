#include <boost/asio/use_awaitable.hpp>

#include <tuple>

#include "sidecache/cache/filler.hpp"

namespace sidecache::cache {

pg::Statement statement_of(const config::Entity& e) {
  return pg::Statement{e.statement, e.query, e.result == config::ResultShape::row, false, e.name, e.file};
}

namespace {
// The statement for one fill of `e`: its tenant (args follow e.bind, and a
// tenant-scoped entity's SQL always binds the tenant, params[0]) and that
// tenant's cap, for the pool's fair queue.
pg::Statement fill_statement(const config::Entity& e, const std::vector<std::string>& args) {
  pg::Statement st = statement_of(e);
  st.tenant = pg::kGlobalTenant;
  if (e.scope == config::Scope::tenant)
    for (std::size_t i = 0; i < e.bind.size() && i < args.size(); ++i)
      if (e.bind[i] == 0) {
        st.tenant = args[i];
        break;
      }
  st.tenant_cap = e.tenant_max_concurrent_fills;
  return st;
}

// Why a replica's answer is not the answer: the fill goes to the primary.
const char* fallback_reason(const pg::FillResult& r) {
  using S = pg::FillResult::Status;
  if (r.status == S::behind) return "behind";
  if (r.status == S::unavailable) return r.conflict ? "conflict" : "unavailable";
  return nullptr;
}
}  // namespace

void PoolFiller::count(const pg::Statement& st, const pg::FillResult& r) {
  if (!metrics_) return;
  if (r.rejected) metrics_->tenant_rejection(st.tenant);
  else metrics_->tenant_fill(st.tenant);
}

net::awaitable<pg::FillResult> PoolFiller::fill(const config::Entity& e, std::vector<std::string> args,
                                                std::optional<std::uint64_t> floor) {
  if (replicas_ && !replicas_->empty()) {
    std::uint64_t need = floor ? *floor : replicas_->conservative_floor();
    if (pg::Replica* r = replicas_->pick(need)) {
      pg::Statement st = fill_statement(e, args);
      st.min_lsn = need;
      st.wait = replicas_->wait();
      std::tie(st.known_server, st.known_replayed) = r->known();
      pg::FillResult got = co_await r->pool().async_run(st, args, net::use_awaitable);
      if (metrics_ && got.waited) metrics_->replica_wait(r->label(), got.status != pg::FillResult::Status::behind);
      const char* reason = fallback_reason(got);
      // The tenant's own queue is full: the primary would only let it take
      // a second share.
      if (!reason || got.tenant_full) {
        count(st, got);
        if (metrics_ && !got.rejected) metrics_->pg_fill(r->label());
        co_return got;
      }
      if (got.status == pg::FillResult::Status::unavailable && !got.conflict && !got.rejected) r->mark_down();  // a lost connection
      if (metrics_) metrics_->replica_fallback(r->label(), reason);
      auto took = got.took;
      pg::Statement again = fill_statement(e, args);
      pg::FillResult primary = co_await pool_.async_run(again, std::move(args), net::use_awaitable);
      primary.took += took;
      count(again, primary);
      if (metrics_ && !primary.rejected) metrics_->pg_fill("primary");
      co_return primary;
    }
  }
  pg::Statement st = fill_statement(e, args);
  pg::FillResult r = co_await pool_.async_run(st, std::move(args), net::use_awaitable);
  count(st, r);
  if (metrics_ && !r.rejected) metrics_->pg_fill("primary");
  co_return r;
}

}  // namespace sidecache::cache

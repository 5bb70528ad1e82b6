#include <boost/asio/use_awaitable.hpp>

#include <tuple>
#include <unordered_map>

#include "sidecache/cache/filler.hpp"

namespace sidecache::cache {

pg::Statement statement_of(const config::Entity& e) {
  return pg::Statement{e.statement, e.query, e.result == config::ResultShape::row, false, e.name, e.file};
}

pg::Statement batch_statement_of(const config::Entity& e) {
  pg::Statement st = statement_of(e);
  st.name = e.batch->statement;
  st.sql = e.batch->query;
  st.single_row = false;
  st.batch = true;
  return st;
}

namespace {
// `st` as a fill of `e` for the pool's fair queue: its tenant (`tenant`, the
// tenant param's value; a global entity's fills are one tenant of their
// own) and that tenant's cap.
pg::Statement for_tenant(pg::Statement st, const config::Entity& e, std::string_view tenant) {
  st.tenant = e.scope == config::Scope::tenant ? std::string(tenant) : pg::kGlobalTenant;
  st.tenant_cap = e.tenant_max_concurrent_fills;
  return st;
}

// The tenant among a fill's args (e.bind order; a tenant-scoped entity's
// SQL always binds the tenant, params[0]).
std::string_view tenant_in(const config::Entity& e, const std::vector<std::string>& args) {
  for (std::size_t i = 0; i < e.bind.size() && i < args.size(); ++i)
    if (e.bind[i] == 0) return args[i];
  return {};
}

// Why a replica's answer is not the answer: the fill goes to the primary.
const char* fallback_reason(const pg::FillResult& r) {
  using S = pg::FillResult::Status;
  if (r.status == S::behind) return "behind";
  if (r.status == S::unavailable) return r.conflict ? "conflict" : "unavailable";
  return nullptr;
}
}  // namespace

void PoolFiller::count(const pg::Statement& st, const pg::FillResult& r, const std::string& target) {
  if (!metrics_) return;
  if (r.rejected) {
    metrics_->tenant_rejection(st.tenant);
    return;
  }
  metrics_->tenant_fill(st.tenant);
  metrics_->pg_fill(target);
}

net::awaitable<pg::FillResult> PoolFiller::fill(const config::Entity& e, std::vector<std::string> args,
                                                std::optional<std::uint64_t> floor) {
  pg::Statement st = for_tenant(statement_of(e), e, tenant_in(e, args));
  co_return co_await run(e, std::move(st), std::move(args), floor);
}

net::awaitable<pg::FillResult> PoolFiller::fill_background(const config::Entity& e, std::vector<std::string> args,
                                                           std::optional<std::uint64_t> floor) {
  pg::Statement st = statement_of(e);
  st.tenant = pg::kAuditTenant;
  st.tenant_cap = 1;
  co_return co_await run(e, std::move(st), std::move(args), floor);
}

net::awaitable<std::vector<pg::FillResult>> PoolFiller::fill_batch(const config::Entity& e,
                                                                   std::vector<std::vector<std::string>> values,
                                                                   std::optional<std::uint64_t> floor) {
  const config::BatchForm& b = *e.batch;
  // The batch statement's args: the shared params as any key has them, and
  // the varying one as a PostgreSQL array literal of every key's value.
  std::string array = "{";
  for (std::size_t k = 0; k < values.size(); ++k) {
    if (k) array += ',';
    array += '"';
    for (char c : values[k][b.param]) {
      if (c == '"' || c == '\\') array += '\\';
      array += c;
    }
    array += '"';
  }
  array += '}';
  std::vector<std::string> args;
  for (std::size_t i : b.bind) args.push_back(i == b.param ? array : values[0][i]);
  pg::Statement st = for_tenant(batch_statement_of(e), e, values[0][0]);  // (values: tenant first)
  pg::FillResult all = co_await run(e, std::move(st), std::move(args), floor);
  std::vector<pg::FillResult> out(values.size());
  if (all.status != pg::FillResult::Status::ok) {
    for (auto& r : out) r = all;
    co_return out;
  }
  // Rows by key; a key with two rows is an error, as for a single fill.
  std::unordered_map<std::string_view, std::vector<std::size_t>> want;
  for (std::size_t k = 0; k < values.size(); ++k) want[values[k][b.param]].push_back(k);
  for (auto& r : out) {
    r.status = pg::FillResult::Status::not_found;
    r.took = all.took;
    r.waited = all.waited;
  }
  std::vector<int> seen(values.size(), 0);
  for (auto& [key, json] : all.rows) {
    auto it = want.find(key);
    if (it == want.end()) continue;  // a row no key asked for
    for (std::size_t k : it->second) {
      if (++seen[k] > 1) {
        out[k].status = pg::FillResult::Status::error;
        out[k].message = "the entity is 'result: row' but its batch query returned more than one row for this key";
        continue;
      }
      out[k].status = pg::FillResult::Status::ok;
      out[k].json = json;
    }
  }
  co_return out;
}

net::awaitable<pg::FillResult> PoolFiller::run(const config::Entity& e, pg::Statement st, std::vector<std::string> args,
                                               std::optional<std::uint64_t> floor) {
  if (replicas_ && !replicas_->empty() && !e.column_tags()) {
    std::uint64_t need = floor ? *floor : replicas_->conservative_floor();
    if (pg::Replica* r = replicas_->pick(need)) {
      pg::Statement on_replica = st;
      on_replica.min_lsn = need;
      on_replica.wait = replicas_->wait();
      std::tie(on_replica.known_server, on_replica.known_replayed) = r->known();
      pg::FillResult got = co_await r->pool().async_run(std::move(on_replica), args, net::use_awaitable);
      if (metrics_ && got.waited) metrics_->replica_wait(r->label(), got.status != pg::FillResult::Status::behind);
      const char* reason = fallback_reason(got);
      // The tenant's own queue is full: the primary would only let it take
      // a second share.
      if (!reason || got.tenant_full) {
        count(st, got, r->label());
        co_return got;
      }
      if (got.status == pg::FillResult::Status::unavailable && !got.conflict && !got.rejected) r->mark_down();  // a lost connection
      if (metrics_) metrics_->replica_fallback(r->label(), reason);
      auto took = got.took;
      pg::FillResult primary = co_await pool_.async_run(st, std::move(args), net::use_awaitable);
      primary.took += took;
      count(st, primary, "primary");
      co_return primary;
    }
  }
  pg::FillResult r = co_await pool_.async_run(st, std::move(args), net::use_awaitable);
  count(st, r, "primary");
  co_return r;
}

}  // namespace sidecache::cache

#include <boost/asio/use_awaitable.hpp>

#include <tuple>

#include "sidecache/cache/filler.hpp"

namespace sidecache::cache {

pg::Statement statement_of(const config::Entity& e) {
  return pg::Statement{e.statement, e.query, e.result == config::ResultShape::row, false, e.name, e.file};
}

namespace {
// Why a replica's answer is not the answer: the fill goes to the primary.
const char* fallback_reason(const pg::FillResult& r) {
  using S = pg::FillResult::Status;
  if (r.status == S::behind) return "behind";
  if (r.status == S::unavailable) return r.conflict ? "conflict" : "unavailable";
  return nullptr;
}
}  // namespace

net::awaitable<pg::FillResult> PoolFiller::fill(const config::Entity& e, std::vector<std::string> args,
                                                std::optional<std::uint64_t> floor) {
  if (replicas_ && !replicas_->empty()) {
    std::uint64_t need = floor ? *floor : replicas_->conservative_floor();
    if (pg::Replica* r = replicas_->pick(need)) {
      pg::Statement st = statement_of(e);
      st.min_lsn = need;
      st.wait = replicas_->wait();
      std::tie(st.known_server, st.known_replayed) = r->known();
      pg::FillResult got = co_await r->pool().async_run(std::move(st), args, net::use_awaitable);
      if (metrics_ && got.waited) metrics_->replica_wait(r->label(), got.status != pg::FillResult::Status::behind);
      const char* reason = fallback_reason(got);
      if (!reason) {
        if (metrics_) metrics_->pg_fill(r->label());
        co_return got;
      }
      if (got.status == pg::FillResult::Status::unavailable && !got.conflict) r->mark_down();  // a lost connection
      if (metrics_) metrics_->replica_fallback(r->label(), reason);
      auto took = got.took;
      pg::FillResult primary = co_await pool_.async_run(statement_of(e), std::move(args), net::use_awaitable);
      primary.took += took;
      if (metrics_) metrics_->pg_fill("primary");
      co_return primary;
    }
  }
  pg::FillResult r = co_await pool_.async_run(statement_of(e), std::move(args), net::use_awaitable);
  if (metrics_) metrics_->pg_fill("primary");
  co_return r;
}

}  // namespace sidecache::cache

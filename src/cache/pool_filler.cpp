#include <boost/asio/use_awaitable.hpp>

#include "sidecache/cache/filler.hpp"

namespace sidecache::cache {

pg::Statement statement_of(const config::Entity& e) {
  return pg::Statement{e.statement, e.query, e.result == config::ResultShape::row, false, e.name, e.file};
}

net::awaitable<pg::FillResult> PoolFiller::fill(const config::Entity& e, std::vector<std::string> args) {
  pg::FillResult r = co_await pool_.async_run(statement_of(e), std::move(args), net::use_awaitable);
  co_return r;
}

}  // namespace sidecache::cache

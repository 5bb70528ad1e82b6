#include "sidecache/cache/wal_position.hpp"

#include <boost/asio/use_awaitable.hpp>

namespace sidecache::cache {

net::awaitable<std::optional<std::uint64_t>> PgWalPosition::now() {
  std::optional<pg::Lsn> got = co_await clock_.async_now(net::use_awaitable);
  co_return got;
}

}  // namespace sidecache::cache

#pragma once
// The fill seam: how the read path runs an entity's query. PoolFiller runs
// it on the PostgreSQL pool; unit tests of the read path use fakes.
#include <boost/asio/awaitable.hpp>

#include <string>
#include <vector>

#include "sidecache/config/config.hpp"
#include "sidecache/pg/pool.hpp"

namespace sidecache::cache {

namespace net = boost::asio;

class Filler {
 public:
  virtual ~Filler() = default;
  // Runs entity `e`'s query with `args` ($1..$n, the entity's bind order).
  virtual net::awaitable<pg::FillResult> fill(const config::Entity& e, std::vector<std::string> args) = 0;
};

// The prepared statement that fills entity `e` (the pool warms them at start).
pg::Statement statement_of(const config::Entity& e);

class PoolFiller final : public Filler {
 public:
  explicit PoolFiller(pg::Pool& pool) : pool_(pool) {}
  net::awaitable<pg::FillResult> fill(const config::Entity& e, std::vector<std::string> args) override;

 private:
  pg::Pool& pool_;
};

}  // namespace sidecache::cache

#pragma once
// The fill seam: how the read path runs an entity's query. PoolFiller runs
// it on the PostgreSQL pool; unit tests of the read path use fakes.
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sidecache/config/config.hpp"
#include "sidecache/metrics/metrics.hpp"
#include "sidecache/pg/pool.hpp"
#include "sidecache/pg/replicas.hpp"

namespace sidecache::cache {

namespace net = boost::asio;

class Filler {
 public:
  virtual ~Filler() = default;
  // Runs entity `e`'s query with `args` ($1..$n, the entity's bind order).
  // `floor` is the WAL position the answer must include (the invalidations
  // that cover the key; 0 when none does); nullopt when it is not known
  // (the store could not be read), and the filler must assume the worst.
  virtual net::awaitable<pg::FillResult> fill(const config::Entity& e, std::vector<std::string> args,
                                              std::optional<std::uint64_t> floor) = 0;
};

// The prepared statement that fills entity `e` (the pool warms them at start).
pg::Statement statement_of(const config::Entity& e);

// Runs fills on the primary's pool, or on a replica that has replayed the
// fill's floor (waiting up to replica_wait); a replica that is behind,
// down or cancels the query sends the fill to the primary.
class PoolFiller final : public Filler {
 public:
  explicit PoolFiller(pg::Pool& pool, pg::Replicas* replicas = nullptr, metrics::Metrics* metrics = nullptr)
      : pool_(pool), replicas_(replicas), metrics_(metrics) {}
  net::awaitable<pg::FillResult> fill(const config::Entity& e, std::vector<std::string> args,
                                      std::optional<std::uint64_t> floor) override;

 private:
  // Counts a fill (or a refusal) for its tenant.
  void count(const pg::Statement& st, const pg::FillResult& r);
  pg::Pool& pool_;
  pg::Replicas* replicas_;
  metrics::Metrics* metrics_;
};

}  // namespace sidecache::cache

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

// The args of `e`'s query ($1..$n, its bind order) from a request's values
// (e.params order).
inline std::vector<std::string> query_args(const config::Entity& e, const std::vector<std::string>& values) {
  std::vector<std::string> args;
  args.reserve(e.bind.size());
  for (std::size_t i : e.bind) args.push_back(values[i]);
  return args;
}

class Filler {
 public:
  virtual ~Filler() = default;
  // Runs entity `e`'s query with `args` ($1..$n, the entity's bind order).
  // `floor` is the WAL position the answer must include (the invalidations
  // that cover the key; 0 when none does); nullopt when it is not known
  // (the store could not be read), and the filler must assume the worst.
  virtual net::awaitable<pg::FillResult> fill(const config::Entity& e, std::vector<std::string> args,
                                              std::optional<std::uint64_t> floor) = 0;
  // The same query for the staleness audit: work nobody waits for, which
  // must not take connections from fills. This default is fill().
  virtual net::awaitable<pg::FillResult> fill_background(const config::Entity& e, std::vector<std::string> args,
                                                         std::optional<std::uint64_t> floor) {
    co_return co_await fill(e, std::move(args), floor);
  }
  // Several keys of `e` (which has a batch form) that differ only in its
  // batch param, each given by its values (e.params order): one result per
  // key, in order. `floor`: the highest of the keys' floors. This default
  // fills them one by one.
  virtual net::awaitable<std::vector<pg::FillResult>> fill_batch(const config::Entity& e,
                                                                 std::vector<std::vector<std::string>> values,
                                                                 std::optional<std::uint64_t> floor) {
    std::vector<pg::FillResult> out;
    for (auto& v : values) out.push_back(co_await fill(e, query_args(e, v), floor));
    co_return out;
  }
};

// The prepared statement that fills entity `e` (the pool warms them at start).
pg::Statement statement_of(const config::Entity& e);
// The statement of `e`'s batch form (e.batch set).
pg::Statement batch_statement_of(const config::Entity& e);

// Runs fills on the primary's pool, or on a replica that has replayed the
// fill's floor (waiting up to replica_wait); a replica that is behind,
// down or cancels the query sends the fill to the primary.
class PoolFiller final : public Filler {
 public:
  explicit PoolFiller(pg::Pool& pool, pg::Replicas* replicas = nullptr, metrics::Metrics* metrics = nullptr)
      : pool_(pool), replicas_(replicas), metrics_(metrics) {}
  net::awaitable<pg::FillResult> fill(const config::Entity& e, std::vector<std::string> args,
                                      std::optional<std::uint64_t> floor) override;
  // As a tenant of its own, "(audit)", one query at a time per pool: the
  // fair queue gives fills their turns first.
  net::awaitable<pg::FillResult> fill_background(const config::Entity& e, std::vector<std::string> args,
                                                 std::optional<std::uint64_t> floor) override;
  // One query: the entity's batch form, with the varying param as an array.
  net::awaitable<std::vector<pg::FillResult>> fill_batch(const config::Entity& e,
                                                         std::vector<std::vector<std::string>> values,
                                                         std::optional<std::uint64_t> floor) override;

 private:
  // Runs `st` on a replica that has replayed `floor` (waiting up to
  // replica_wait), else on the primary. Entity `e`'s column tags are known
  // only after its read, so no floor can cover the invalidations of the
  // tags its row will carry: such an entity reads the primary.
  net::awaitable<pg::FillResult> run(const config::Entity& e, pg::Statement st, std::vector<std::string> args,
                                     std::optional<std::uint64_t> floor);
  // Counts a fill for its tenant and its server (`target`), or a refusal.
  void count(const pg::Statement& st, const pg::FillResult& r, const std::string& target);
  pg::Pool& pool_;
  pg::Replicas* replicas_;
  metrics::Metrics* metrics_;
};

}  // namespace sidecache::cache

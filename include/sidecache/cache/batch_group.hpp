#pragma once
// The misses of one batch read that an entity's batch form can fill with one
// query: keys of one entity that differ only in its batch param. Each key
// still goes through the single-key path (singleflight, lease, the begin
// that dates the fill, the commit that refuses a fill an invalidation
// followed); only the PostgreSQL query is shared. A key's fill waits until
// every key that may still fill has arrived (`expected`), or no key has
// arrived for 5 ms (a key waiting for another process's lease), or 100 ms
// have passed since the first; then one query runs for all that arrived. A
// key that arrives later runs a query of its own. It began after every one of their
// begins, so each key's no-stale-set rule holds as for a query of its own.
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sidecache/cache/snapshot.hpp"
#include "sidecache/pg/pool.hpp"

namespace sidecache::cache {

struct BatchGroup {
  const config::Entity* entity = nullptr;
  SnapshotPtr snapshot;      // keeps `entity` alive
  std::size_t expected = 0;  // keys of the group whose read has not ended without a fill
  struct Waiting {
    std::vector<std::string> values;
    std::optional<std::uint64_t> floor;
    std::function<void(pg::FillResult)> done;
  };
  std::vector<Waiting> waiting;
  std::optional<boost::asio::steady_timer> timer;
  std::chrono::steady_clock::time_point first_arrival{};
  std::uint64_t arrivals = 0;  // tells a timer's wake-up whether a key arrived since it was set
  bool flushed = false;
};

}  // namespace sidecache::cache

#pragma once
// The primary's WAL position, read for invalidations and sampled for the
// lag of replicas. One connection on its own thread. Reads are batched:
// every caller that asked before a query was sent is answered by that
// query, and callers that ask while it runs wait for the next one (which
// is then sure to be sent after their write committed).
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sidecache/config/config.hpp"
#include "sidecache/pg/lsn.hpp"

namespace sidecache::pg {

// How long a server that has replayed up to `replayed` has been behind,
// given the primary's positions (time first seen, position; oldest first,
// positions increasing): the time since the first position it has not
// replayed, zero when it has them all, nullopt without samples. Pure.
using WalSample = std::pair<std::chrono::steady_clock::time_point, Lsn>;
std::optional<std::chrono::steady_clock::duration> lag_since(const std::deque<WalSample>& samples, Lsn replayed,
                                                             std::chrono::steady_clock::time_point now);

class WalClock {
 public:
  using Clock = std::chrono::steady_clock;
  // Reads the position, blocking (on the clock's thread); nullopt when it
  // cannot. primary_query() is the real one; unit tests pass their own.
  using Query = std::function<std::optional<Lsn>()>;
  static Query primary_query(const config::PostgresConfig& cfg);
  // Samples are kept for `window` (at least replica_max_lag), one every
  // `interval` even when nobody asks.
  WalClock(Query query, Clock::duration window, Clock::duration interval = std::chrono::milliseconds(100));
  ~WalClock();
  WalClock(const WalClock&) = delete;
  WalClock& operator=(const WalClock&) = delete;

  void start();
  void stop();

  // The primary's current WAL insert position, read after this call (nullopt
  // when the primary could not be asked). Completes on the handler's executor.
  template <class Token>
  auto async_now(Token&& token) {
    return boost::asio::async_initiate<Token, void(std::optional<Lsn>)>(
        [this](auto handler) {
          using H = decltype(handler);
          auto ex = boost::asio::get_associated_executor(handler);
          auto h = std::make_shared<H>(std::move(handler));
          ask([ex, h](std::optional<Lsn> r) { boost::asio::post(ex, [h, r]() mutable { (*h)(r); }); });
        },
        token);
  }

  // The newest position read (0 before the first).
  Lsn latest() const { return latest_.load(std::memory_order_relaxed); }
  // How far behind a server that has replayed up to `replayed` is: the time
  // since the primary was first seen past it (zero when it is not behind
  // any sample). nullopt before the first sample.
  std::optional<Clock::duration> lag_of(Lsn replayed, Clock::time_point now = Clock::now()) const;
  // Queries sent so far (tests and metrics: one serves many invalidations).
  std::uint64_t queries() const { return queries_.load(std::memory_order_relaxed); }

 private:
  void ask(std::function<void(std::optional<Lsn>)> done);
  void run();

  Query query_;
  Clock::duration window_, interval_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::function<void(std::optional<Lsn>)>> waiting_;
  std::deque<WalSample> samples_;  // oldest first; positions never decrease
  bool stopping_ = false;
  std::atomic<Lsn> latest_{0};
  std::atomic<std::uint64_t> queries_{0};
};

}  // namespace sidecache::pg

// pg::WalClock's batching, with a query of our own: one query answers every
// caller that asked before it was sent, and callers who ask while it runs
// wait for the next one.
#include <catch2/catch.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "sidecache/pg/wal_clock.hpp"

using namespace sidecache::pg;
namespace net = boost::asio;

TEST_CASE("wal clock: callers who ask while a query runs share the next query, which is sent after they asked") {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, released = false;
  std::atomic<int> calls{0};
  WalClock::Query query = [&]() -> std::optional<Lsn> {
    int n = ++calls;
    if (n == 1) {
      std::unique_lock lock(mu);
      entered = true;
      cv.notify_all();
      cv.wait(lock, [&] { return released; });  // the first query is in flight until released
      return Lsn{100};
    }
    return Lsn{200};
  };
  WalClock clock(query, std::chrono::seconds(10), std::chrono::hours(1));
  net::io_context io;
  auto busy = net::make_work_guard(io);  // run_one_for waits for the clock's answers
  std::optional<Lsn> first;
  std::vector<std::optional<Lsn>> later;
  clock.async_now(net::bind_executor(io, [&](std::optional<Lsn> l) { first = l; }));
  clock.start();
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return entered; });
  }
  // 100 callers while the first query runs: not answered by it (it may
  // have been sent before their writes), all answered by the next one.
  for (int i = 0; i < 100; ++i)
    clock.async_now(net::bind_executor(io, [&](std::optional<Lsn> l) { later.push_back(l); }));
  {
    std::lock_guard lock(mu);
    released = true;
  }
  cv.notify_all();
  for (int turns = 0; later.size() < 100 && turns < 1000; ++turns) io.run_one_for(std::chrono::seconds(5));
  clock.stop();
  io.poll();
  CHECK(first == Lsn{100});
  REQUIRE(later.size() == 100);
  for (const auto& l : later) CHECK(l == Lsn{200});
  CHECK(calls == 2);
  CHECK(clock.queries() == 2);
  CHECK(clock.latest() == 200);
}

TEST_CASE("wal clock: a failed read answers nullopt, and stopping answers whoever still waits") {
  WalClock clock([] { return std::optional<Lsn>(); }, std::chrono::seconds(10), std::chrono::hours(1));
  net::io_context io;
  auto busy = net::make_work_guard(io);
  int answered = 0;
  std::optional<Lsn> got = Lsn{1};
  clock.async_now(net::bind_executor(io, [&](std::optional<Lsn> l) { got = l, ++answered; }));
  clock.start();
  for (int turns = 0; answered < 1 && turns < 10; ++turns) io.run_one_for(std::chrono::seconds(5));
  CHECK_FALSE(got);
  clock.stop();
  clock.async_now(net::bind_executor(io, [&](std::optional<Lsn> l) { got = l, ++answered; }));  // after stop
  io.poll();
  CHECK(answered == 2);
}

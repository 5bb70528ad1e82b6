#include <catch2/catch.hpp>

#include <boost/asio.hpp>
#include <algorithm>
#include <thread>
#include <vector>

#include "sidecache/cache/singleflight.hpp"

using namespace sidecache::cache;
namespace net = boost::asio;

TEST_CASE("one leader per key, later joiners wait and share its result") {
  Singleflight<std::string> sf;
  auto a = sf.join("k");
  auto b = sf.join("k");
  auto c = sf.join("other");
  CHECK(a.leader);
  CHECK_FALSE(b.leader);
  CHECK(c.leader);
  CHECK(a.call == b.call);
  CHECK(sf.in_flight() == 2);

  std::vector<std::string> got;
  sf.on_result(b.call, [&](auto r) { got.push_back(*r); });
  CHECK(got.empty());
  CHECK(sf.waiting() == 1);
  sf.publish(a.call, "value");
  CHECK(got == std::vector<std::string>{"value"});
  CHECK(sf.waiting() == 0);

  // Published but not finished: a newcomer joins the same call and gets the
  // result at once, without becoming a second leader.
  auto late = sf.join("k");
  CHECK_FALSE(late.leader);
  sf.on_result(late.call, [&](auto r) { got.push_back(*r); });
  CHECK(got.size() == 2);

  sf.finish("k", a.call);
  auto next = sf.join("k");
  CHECK(next.leader);  // a new computation after finish
  CHECK(next.call != a.call);
  sf.finish("k", a.call);  // a stale finish does not remove the new call
  CHECK_FALSE(sf.join("k").leader);
}

TEST_CASE("concurrent coroutines on several threads make one computation and all get it") {
  Singleflight<int> sf;
  constexpr int kThreads = 4, kPerThread = 50;
  std::vector<std::unique_ptr<net::io_context>> ios;
  for (int i = 0; i < kThreads; ++i) ios.push_back(std::make_unique<net::io_context>(1));
  std::atomic<int> leaders{0}, answers{0}, wrong{0};
  std::atomic<int> started{0};

  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      net::co_spawn(*ios[t], [&, t]() -> net::awaitable<void> {
        ++started;
        auto j = sf.join("hot");
        if (j.leader) {
          ++leaders;
          // Stay in flight until every coroutine has joined.
          net::steady_timer timer(co_await net::this_coro::executor);
          while (started.load() < kThreads * kPerThread) {
            timer.expires_after(std::chrono::milliseconds(1));
            co_await timer.async_wait(net::use_awaitable);
          }
          sf.publish(j.call, 42);
          sf.finish("hot", j.call);
          ++answers;
          co_return;
        }
        auto r = co_await sf.async_wait(j.call, net::use_awaitable);
        // The waiter resumes on its own thread's context.
        if (!ios[t]->get_executor().running_in_this_thread()) ++wrong;
        if (*r != 42) ++wrong;
        ++answers;
      }, net::detached);
    }
  }
  std::vector<std::thread> threads;
  for (auto& io : ios) threads.emplace_back([&io] { io->run(); });
  for (auto& th : threads) th.join();
  CHECK(leaders == 1);
  CHECK(answers == kThreads * kPerThread);
  CHECK(wrong == 0);
  CHECK(sf.in_flight() == 0);
  CHECK(sf.waiting() == 0);
}

TEST_CASE("a published result reaches each loop's waiters in one pass: one posted function per loop, in arrival order") {
  Singleflight<std::string> sf;
  auto call = sf.join("k").call;
  net::io_context a, b;
  std::vector<int> order_a;
  int answered_b = 0;
  for (int i = 0; i < 100; ++i) {
    sf.async_wait(call, net::bind_executor(a, [&order_a, i](Singleflight<std::string>::Result r) {
      CHECK(*r == "v");
      order_a.push_back(i);
    }));
    sf.async_wait(call, net::bind_executor(b, [&answered_b](Singleflight<std::string>::Result r) {
      CHECK(*r == "v");
      ++answered_b;
    }));
  }
  CHECK(sf.waiting() == 200);
  sf.publish(call, "v");
  // io_context::run() returns the number of handlers it ran.
  CHECK(a.run() == 1);
  CHECK(b.run() == 1);
  REQUIRE(order_a.size() == 100);
  CHECK(std::is_sorted(order_a.begin(), order_a.end()));
  CHECK(answered_b == 100);
  CHECK(sf.waiting() == 0);
  // A waiter that comes after the result is answered on its own loop too.
  int late = 0;
  sf.async_wait(call, net::bind_executor(a, [&late](Singleflight<std::string>::Result) { ++late; }));
  CHECK(late == 0);
  a.restart();
  CHECK(a.run() == 1);
  CHECK(late == 1);
}

#include <catch2/catch.hpp>

#include <vector>

#include "sidecache/redis/circuit_breaker.hpp"

using namespace sidecache::redis;
using State = CircuitBreaker::State;
using namespace std::chrono_literals;

namespace {
struct FakeClock {
  CircuitBreaker::Clock::time_point t{};
  CircuitBreaker::Now fn() {
    return [this] { return t; };
  }
};
}  // namespace

TEST_CASE("consecutive failures trip the breaker, a success in between resets the count") {
  FakeClock clock;
  std::vector<std::pair<State, State>> changes;
  CircuitBreaker b({3, 1000ms, 1}, [&](State f, State t) { changes.emplace_back(f, t); }, clock.fn());
  for (int i = 0; i < 2; ++i) b.record(*b.allow(), false);
  b.record(*b.allow(), true);
  for (int i = 0; i < 2; ++i) b.record(*b.allow(), false);
  CHECK(b.state() == State::closed);
  b.record(*b.allow(), false);
  CHECK(b.state() == State::open);
  REQUIRE(changes.size() == 1);
  CHECK(changes[0] == std::make_pair(State::closed, State::open));
}

TEST_CASE("open: every call is refused until open_timeout, then half-open probes decide") {
  FakeClock clock;
  CircuitBreaker b({1, 1000ms, 2}, {}, clock.fn());
  b.record(*b.allow(), false);
  REQUIRE(b.state() == State::open);
  CHECK_FALSE(b.allow());
  clock.t += 999ms;
  CHECK_FALSE(b.allow());
  CHECK(b.refused() == 2);
  clock.t += 1ms;
  CHECK(b.state() == State::half_open);
  auto p1 = b.allow(), p2 = b.allow();
  REQUIRE(p1);
  REQUIRE(p2);
  CHECK_FALSE(b.allow());  // only half_open_probes at a time
  b.record(*p1, true);
  CHECK(b.state() == State::half_open);
  b.record(*p2, true);
  CHECK(b.state() == State::closed);
}

TEST_CASE("a failed probe opens the breaker again for a full open_timeout") {
  FakeClock clock;
  CircuitBreaker b({1, 500ms, 1}, {}, clock.fn());
  b.record(*b.allow(), false);
  clock.t += 500ms;
  auto probe = b.allow();
  REQUIRE(probe);
  b.record(*probe, false);
  CHECK(b.state() == State::open);
  clock.t += 499ms;
  CHECK_FALSE(b.allow());
  clock.t += 1ms;
  CHECK(b.allow());
}

TEST_CASE("results from an earlier generation are ignored") {
  FakeClock clock;
  CircuitBreaker b({2, 100ms, 1}, {}, clock.fn());
  auto old = b.allow();
  b.record(*b.allow(), false);
  b.record(*b.allow(), false);
  REQUIRE(b.state() == State::open);
  clock.t += 100ms;
  auto probe = b.allow();
  b.record(*old, true);  // a slow success from before the trip
  CHECK(b.state() == State::half_open);
  b.record(*probe, true);
  CHECK(b.state() == State::closed);
}

#pragma once
// A circuit breaker with gobreaker's semantics, guarding Redis:
//   closed     every call goes through; `failures` consecutive failures open it.
//   open       every call fails at once (no Redis traffic) until open_timeout.
//   half-open  at most `half_open_probes` calls go through; that many
//              consecutive successes close it, any failure opens it again.
// Results of calls let through in an earlier state (generation) are ignored,
// as in gobreaker. Thread-safe: one breaker serves every worker.
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>

namespace sidecache::redis {

class CircuitBreaker {
 public:
  enum class State { closed, open, half_open };
  using Clock = std::chrono::steady_clock;

  struct Settings {
    unsigned failures = 5;
    std::chrono::milliseconds open_timeout{2000};
    unsigned half_open_probes = 1;
  };

  // Called after each state change, outside the lock.
  using OnChange = std::function<void(State from, State to)>;
  using Now = std::function<Clock::time_point()>;

  explicit CircuitBreaker(Settings s, OnChange on_change = {}, Now now = &Clock::now);

  // May one call go to Redis? The token must be handed back to record().
  std::optional<std::uint64_t> allow();
  // The outcome of a call that allow() let through.
  void record(std::uint64_t token, bool success);

  State state();
  // Total calls refused while open or half-open-full (for metrics and tests).
  std::uint64_t refused() const;

 private:
  void set_state(State to, Clock::time_point now, State& from_out, bool& changed);
  void refresh(Clock::time_point now, State& from_out, bool& changed);
  void notify(bool changed, State from, State to);

  Settings s_;
  OnChange on_change_;
  Now now_;
  mutable std::mutex mu_;
  State state_ = State::closed;
  std::uint64_t generation_ = 0;
  unsigned consecutive_failures_ = 0;
  unsigned consecutive_successes_ = 0;
  unsigned half_open_in_flight_ = 0;
  Clock::time_point open_until_{};
  std::uint64_t refused_ = 0;
};

const char* to_string(CircuitBreaker::State s);

}  // namespace sidecache::redis

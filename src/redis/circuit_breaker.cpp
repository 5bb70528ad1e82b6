#include "sidecache/redis/circuit_breaker.hpp"

namespace sidecache::redis {

const char* to_string(CircuitBreaker::State s) {
  switch (s) {
    case CircuitBreaker::State::closed: return "closed";
    case CircuitBreaker::State::open: return "open";
    case CircuitBreaker::State::half_open: return "half-open";
  }
  return "?";
}

CircuitBreaker::CircuitBreaker(Settings s, OnChange on_change, Now now)
    : s_(s), on_change_(std::move(on_change)), now_(std::move(now)) {
  if (s_.failures == 0) s_.failures = 1;
  if (s_.half_open_probes == 0) s_.half_open_probes = 1;
}

void CircuitBreaker::set_state(State to, Clock::time_point now, State& from_out, bool& changed) {
  if (state_ == to) return;
  if (!changed) from_out = state_;
  changed = true;
  state_ = to;
  ++generation_;
  consecutive_failures_ = 0;
  consecutive_successes_ = 0;
  half_open_in_flight_ = 0;
  if (to == State::open) open_until_ = now + s_.open_timeout;
}

void CircuitBreaker::refresh(Clock::time_point now, State& from_out, bool& changed) {
  if (state_ == State::open && now >= open_until_) set_state(State::half_open, now, from_out, changed);
}

void CircuitBreaker::notify(bool changed, State from, State to) {
  if (changed && on_change_ && from != to) on_change_(from, to);
}

std::optional<std::uint64_t> CircuitBreaker::allow() {
  State from = State::closed, to;
  bool changed = false;
  std::optional<std::uint64_t> token;
  {
    std::lock_guard lock(mu_);
    refresh(now_(), from, changed);
    to = state_;
    if (state_ == State::closed) {
      token = generation_;
    } else if (state_ == State::half_open && half_open_in_flight_ < s_.half_open_probes) {
      ++half_open_in_flight_;
      token = generation_;
    } else {
      ++refused_;
    }
  }
  notify(changed, from, to);
  return token;
}

void CircuitBreaker::record(std::uint64_t token, bool success) {
  State from = State::closed, to;
  bool changed = false;
  {
    std::lock_guard lock(mu_);
    auto now = now_();
    refresh(now, from, changed);
    if (token == generation_) {
      if (state_ == State::closed) {
        if (success) {
          consecutive_failures_ = 0;
        } else if (++consecutive_failures_ >= s_.failures) {
          set_state(State::open, now, from, changed);
        }
      } else if (state_ == State::half_open) {
        if (!success) {
          set_state(State::open, now, from, changed);
        } else if (++consecutive_successes_ >= s_.half_open_probes) {
          set_state(State::closed, now, from, changed);
        }
      }
    }
    to = state_;
  }
  notify(changed, from, to);
}

CircuitBreaker::State CircuitBreaker::state() {
  State from = State::closed, to;
  bool changed = false;
  {
    std::lock_guard lock(mu_);
    refresh(now_(), from, changed);
    to = state_;
  }
  notify(changed, from, to);
  return to;
}

std::uint64_t CircuitBreaker::refused() const {
  std::lock_guard lock(mu_);
  return refused_;
}

}  // namespace sidecache::redis

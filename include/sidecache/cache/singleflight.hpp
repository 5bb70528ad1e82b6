#pragma once
// Per-key request collapsing, process-wide: the first caller for a key becomes
// the leader and computes the result; everyone who joins before the leader
// finishes gets that same result instead of computing it again.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/query.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace sidecache::cache {

template <class T>
class Singleflight {
 public:
  using Result = std::shared_ptr<const T>;

  // One in-flight computation. Opaque to callers.
  class Call {
    friend class Singleflight;
    // A waiter: its function, and the executor to run it on (none: run it
    // on the publisher's thread).
    struct Waiter {
      std::function<void(Result)> fn;
      boost::asio::any_io_executor ex;
    };
    std::vector<Waiter> waiters_;
    Result result_;  // set once published
    std::atomic<bool> sealed_{false};

   public:
    // The leader marks the point after which a caller that joins may no
    // longer take the result on trust (see Service::get_entity).
    void seal() { sealed_.store(true, std::memory_order_seq_cst); }
    bool sealed() const { return sealed_.load(std::memory_order_seq_cst); }
  };
  using CallPtr = std::shared_ptr<Call>;

  struct Joined {
    CallPtr call;
    bool leader = false;
  };

  // Joins the computation for `key`, starting one (leader = true) if none is
  // in flight.
  Joined join(const std::string& key) {
    Shard& s = shard(key);
    std::lock_guard lock(s.mu);
    auto [it, fresh] = s.calls.try_emplace(key);
    if (fresh) it->second = std::make_shared<Call>();
    return {it->second, fresh};
  }

  // The computation in flight for `key`, if any; starts none.
  CallPtr find(const std::string& key) {
    Shard& s = shard(key);
    std::lock_guard lock(s.mu);
    auto it = s.calls.find(key);
    return it == s.calls.end() ? nullptr : it->second;
  }

  // Registers `fn` to receive the result; runs it at once (on this thread)
  // if the result is already published.
  void on_result(const CallPtr& call, std::function<void(Result)> fn) { wait_on(call, std::move(fn), {}); }

  // Asio form of on_result: completes with the Result on the waiter's own
  // executor (its worker thread), never on the publisher's. The waiters of
  // one worker are answered in one pass: publish() posts one function per
  // worker, which resumes each of them in turn (a stampede's thousand
  // waiters cost two posts on two workers, not a thousand).
  template <class Token>
  auto async_wait(const CallPtr& call, Token&& token) {
    return boost::asio::async_initiate<Token, void(Result)>(
        [this, call](auto handler) {
          using H = decltype(handler);
          boost::asio::any_io_executor ex = boost::asio::get_associated_executor(handler);
          auto h = std::make_shared<H>(std::move(handler));
          wait_on(call, [h](Result r) { (*h)(std::move(r)); }, ex);
        },
        token);
  }

  // Leader: hands the result to every waiter, and to anyone joining until
  // finish() is called.
  void publish(const CallPtr& call, T value) {
    std::vector<typename Call::Waiter> waiters;
    Result r = std::make_shared<const T>(std::move(value));
    {
      Shard& s = shard_of(call);
      std::lock_guard lock(s.mu);
      call->result_ = r;
      waiters.swap(call->waiters_);
    }
    waiting_.fetch_sub(waiters.size(), std::memory_order_relaxed);
    // Waiters by the loop they run on, in the order they came.
    struct Pass {
      boost::asio::execution_context* context;
      boost::asio::any_io_executor ex;
      std::vector<std::function<void(Result)>> fns;
    };
    std::vector<Pass> passes;
    for (auto& w : waiters) {
      if (!w.ex) {
        w.fn(r);
        continue;
      }
      auto* context = &boost::asio::query(w.ex, boost::asio::execution::context);
      auto it = std::find_if(passes.begin(), passes.end(), [&](const Pass& p) { return p.context == context; });
      if (it == passes.end()) it = passes.insert(passes.end(), Pass{context, w.ex, {}});
      it->fns.push_back(std::move(w.fn));
    }
    for (auto& p : passes)
      boost::asio::post(p.ex, [fns = std::move(p.fns), r] {
        for (auto& fn : fns) fn(r);
      });
  }

  // Leader: removes the call, so the next join() starts a new computation.
  void finish(const std::string& key, const CallPtr& call) {
    Shard& s = shard(key);
    std::lock_guard lock(s.mu);
    auto it = s.calls.find(key);
    if (it != s.calls.end() && it->second == call) s.calls.erase(it);
  }

  // How many callers are waiting for a leader right now.
  std::size_t waiting() const { return waiting_.load(std::memory_order_relaxed); }

  // How many keys have a computation in flight.
  std::size_t in_flight() const {
    std::size_t n = 0;
    for (auto& s : shards_) {
      std::lock_guard lock(s.mu);
      n += s.calls.size();
    }
    return n;
  }

 private:
  // Registers `fn`, to run on `ex` (none: on the publisher's thread); runs
  // it at once if the result is already published.
  void wait_on(const CallPtr& call, std::function<void(Result)> fn, boost::asio::any_io_executor ex) {
    Result ready;
    {
      Shard& s = shard_of(call);
      std::lock_guard lock(s.mu);
      if (!call->result_) {
        call->waiters_.push_back({std::move(fn), std::move(ex)});
        waiting_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      ready = call->result_;
    }
    if (ex) boost::asio::post(ex, [fn = std::move(fn), ready] { fn(ready); });
    else fn(std::move(ready));
  }

  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, CallPtr> calls;
  };
  static constexpr std::size_t kShards = 16;

  Shard& shard(const std::string& key) { return shards_[std::hash<std::string>{}(key) % kShards]; }
  // Waiter lists are guarded by one shard lock chosen by the call's address;
  // join() hands out the call under its key's shard lock, and the call's
  // fields are only touched under shard_of(call).
  Shard& shard_of(const CallPtr& call) {
    return shards_[(reinterpret_cast<std::uintptr_t>(call.get()) >> 4) % kShards];
  }

  std::array<Shard, kShards> shards_;
  std::atomic<std::size_t> waiting_{0};
};

}  // namespace sidecache::cache

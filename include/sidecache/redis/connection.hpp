#pragma once
// One asynchronous Redis connection (a RespStream: hiredis' codec over an
// Asio socket, plain or TLS), living on one worker's io_context. Every
// command carries a deadline; a command that cannot be sent (not connected)
// fails at once, so a Redis outage never makes a request wait. The
// connection reconnects by itself with backoff.
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <atomic>
#include <functional>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sidecache/config/config.hpp"
#include "sidecache/redis/client.hpp"
#include "sidecache/redis/reply.hpp"
#include "sidecache/redis/resp_stream.hpp"

namespace sidecache::redis {

namespace net = boost::asio;

class Connection : public Client, public std::enable_shared_from_this<Connection>, private RespStream::Events {
 public:
  Connection(net::any_io_executor ex, config::RedisConfig cfg, std::string name);
  ~Connection();

  // Starts connecting; must be called on the connection's executor.
  void start();
  // Disconnects for good; must be called on the connection's executor.
  void stop();

  // SET key value PX ttl_ms.
  net::awaitable<Reply> set_px(std::string_view key, std::string_view value, std::uint64_t ttl_ms);
  // MGET keys...; the first element's first `split` bytes (at most 32) go to
  // Reply::head and the rest to Reply::value, so that a cached value's header
  // and body arrive separately and the body is copied once.
  // `late`, when given, is called once if the command times out (see
  // LateVerdict); never when it is answered in time.
  net::awaitable<Reply> mget(const std::vector<std::string>& keys, std::size_t split = 0, LateVerdict late = {},
                             bool asking = false) override;
  // EVALSHA script keys... args..., falling back to EVAL on NOSCRIPT. For an
  // array reply the first element is split like mget().
  net::awaitable<Reply> eval(const Script& script, const std::vector<std::string>& keys,
                             const std::vector<std::string_view>& args, std::size_t split = 0, LateVerdict late = {},
                             bool asking = false) override;
  // Any command (ClusterClient routes by key in front of it).
  // `timeout` (0: redis.timeout) is for a command that blocks in Redis
  // (WAIT): commands sent after it wait for its reply anyway. `asking`
  // (Redis Cluster, after an ASK redirection) sends ASKING right before it,
  // in the same write, so that no other command can come between.
  net::awaitable<Reply> command(std::span<const std::string_view> argv, std::size_t split = 0, LateVerdict late = {},
                                std::chrono::milliseconds timeout = std::chrono::milliseconds(0), bool asking = false);

  // Counts writes of queued commands to Redis, and every change of
  // connection. A command issued while writes() was w has not reached Redis
  // (it is still in the output buffer) as long as writes() is still w: a read
  // issued then sees every write Redis executes from now on. Store::lookup
  // lets a request share such a read instead of sending its own.
  std::uint64_t writes() const override { return writes_; }
  std::uint64_t session(std::string_view = {}) const override { return stream_ ? session_ : 0; }

  State state() const { return state_; }
  // host:port of the server it is (or was last) connected to; any thread.
  std::string address() const;
  // host:port (or the socket path) as configured: where it connects.
  std::string target() const { return cfg_.endpoint(); }
  const config::RedisConfig& config() const override { return cfg_; }
  // Client: one server holds every key.
  net::awaitable<Reply> command_for(std::string_view, std::span<const std::string_view> argv, std::size_t split = 0,
                                    LateVerdict late = {},
                                    std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) override {
    return command(argv, split, std::move(late), timeout);
  }
  // Drops the connection (the master moved); commands in flight fail as
  // "connection lost", the next command connects anew. On the executor.
  void reconnect(const std::string& why);
  // How many leading bytes of a bulk reply go to Reply::head for the oldest
  // unanswered command (the reply being read). For the reply functions.
  std::size_t reply_split() const;
  // Consulted before every reconnect the connection would make on its own
  // (a closed circuit breaker says yes; an open one keeps Redis free of
  // traffic until a probe asks for the connection).
  void set_may_reconnect(std::function<bool()> fn) { may_reconnect_ = std::move(fn); }
  const net::any_io_executor& executor() const override { return ex_; }

 private:
  // A command sent and not yet answered. Redis answers in the order
  // commands were sent, and every command waits the same timeout, so
  // deadlines rise along the queue: one timer, set for the oldest
  // unanswered command, times them all out (instead of one timer per
  // command, whose cancel reprograms the reactor's timerfd every time).
  struct Pending {
    net::any_completion_handler<void(Reply)> handler;  // empty once completed
    net::any_io_executor ex;  // the handler's own executor: completions run there
    std::size_t split = 0;
    std::chrono::steady_clock::time_point deadline;
    std::chrono::steady_clock::time_point sent_at;
    LateVerdict late;  // called once, after a timeout, when its fate is known
    bool setup = false;    // AUTH or SELECT, sent first on a new connection
    bool discard = false;  // ASKING: its OK is not anybody's answer
  };
  static void give_verdict(Pending& p, bool answered);
  // Sets `timer` for `at`; `armed` is true until it fires (or is cancelled),
  // then `fire` runs unless the connection stopped.
  void arm(net::steady_timer& timer, bool& armed, std::chrono::steady_clock::time_point at, void (Connection::*fire)());
  void arm_hang_check();
  void on_hang_check();
  std::chrono::steady_clock::duration hang_after() const;
  static void complete(Pending& p, Reply r);
  void arm_deadline();
  void on_deadline();
  // RespStream::Events
  void on_open() override;
  void on_reply(void* reply) override;
  void on_close(const std::string& why) override;
  // Ends the stream and fails what was sent, as a lost connection does.
  void drop(const std::string& why);
  void fail_sent();
  // Sends a command no caller waits for: AUTH/SELECT (`setup`: an error
  // reply drops the connection) or ASKING (its reply is dropped).
  void send_unawaited(std::span<const std::string_view> argv, bool setup, std::chrono::milliseconds limit);

  void connect();
  void schedule_reconnect();
  // Connects if needed and waits for the connection, at most `limit`.
  net::awaitable<bool> ready(std::chrono::milliseconds limit);
  void wake_connect_waiters();

  net::any_io_executor ex_;
  config::RedisConfig cfg_;
  std::string name_;
  std::shared_ptr<RespStream> stream_;
  net::steady_timer connect_timer_;  // the backoff before a reconnect
  std::atomic<State> state_{State::disconnected};  // read by /readyz from other workers
  bool stopped_ = false;
  bool logged_down_ = false;
  std::chrono::milliseconds backoff_{50};
  std::function<bool()> may_reconnect_;
  std::vector<std::weak_ptr<net::steady_timer>> connect_waiters_;
  std::deque<Pending> sent_;  // oldest first
  net::steady_timer deadline_timer_;
  bool deadline_armed_ = false;
  net::steady_timer hang_timer_;
  bool hang_armed_ = false;
  bool hung_ = false;  // nothing read while replies were due: timeouts count as failures at once
  std::chrono::steady_clock::time_point last_read_{};
  std::chrono::steady_clock::time_point hang_due_{};  // when the armed hang check is due
  std::uint64_t writes_ = 0;
  std::uint64_t session_ = 0;  // this connection's number, new at every on_open()
  mutable std::mutex address_mu_;
  std::string address_;
};

}  // namespace sidecache::redis

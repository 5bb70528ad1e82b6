#pragma once
// One Redis connection in subscribe mode (a RespStream, plain or TLS):
// SUBSCRIBE to one channel, hand every message to a callback, and say when
// the subscription is up and when it is lost. It reconnects by itself with
// backoff; TCP keepalive finds a peer that vanished without a word.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sidecache/config/config.hpp"
#include "sidecache/redis/resp_stream.hpp"

namespace sidecache::redis {

namespace net = boost::asio;

class Subscriber : public std::enable_shared_from_this<Subscriber>, private RespStream::Events {
 public:
  using MessageFn = std::function<void(std::string_view)>;
  // true: subscribed (every message published from now on arrives);
  // false: lost (messages may have been missed).
  using StateFn = std::function<void(bool)>;

  Subscriber(net::any_io_executor ex, config::RedisConfig cfg, std::string channel, MessageFn on_message,
             StateFn on_state);
  ~Subscriber();

  // Both must be called on the executor.
  void start();
  void stop();

  // Connects to each of `targets` in turn, moving on after every loss (the
  // sentinels, for SentinelWatch); names itself `name` in log lines.
  void rotate_through(std::vector<config::RedisConfig> targets, std::string name = "sentinel");
  // Drops the subscription and subscribes again (the master moved): as a
  // loss, L1 is flushed.
  void reconnect(const std::string& why) { drop(why); }

  bool subscribed() const { return subscribed_; }
  const std::string& channel() const { return channel_; }
  const net::any_io_executor& executor() const { return ex_; }

 private:
  void on_open() override;
  void on_reply(void* reply) override;
  void on_close(const std::string& why) override;
  void drop(const std::string& why);
  void connect();
  void lost(const char* why);
  void schedule_reconnect();

  net::any_io_executor ex_;
  config::RedisConfig cfg_;
  std::string channel_;
  std::string name_ = "l1";  // in log lines: redis[l1]
  std::vector<config::RedisConfig> targets_;
  std::size_t target_ = 0;
  MessageFn on_message_;
  StateFn on_state_;
  std::shared_ptr<RespStream> stream_;
  net::steady_timer timer_;  // the subscribe deadline, then the backoff
  std::chrono::milliseconds backoff_{50};
  bool stopped_ = true;
  bool subscribed_ = false;
  bool logged_down_ = false;
};

}  // namespace sidecache::redis

#pragma once
// Redis Sentinel: where the master named redis.master_name is now.
//
// - ask_master() asks the sentinels in order (`SENTINEL
//   get-master-addr-by-name`), each within redis.connect_timeout +
//   redis.timeout; the first that knows the master answers. Every new
//   connection asks (RespStream::open), so a connection lost in a failover
//   finds the new master by itself.
// - A connection to the address given first checks `ROLE`: a sentinel's
//   answer can be a moment out of date during a failover.
// - SentinelWatch subscribes to `+switch-master` on one sentinel (the next
//   one when it is lost) and reports each switch of our master, so that
//   connections still open to the old one move at once.
#include <boost/asio/any_io_executor.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sidecache/config/config.hpp"

namespace sidecache::redis {

namespace net = boost::asio;
class Subscriber;

// done(master, "") or done({}, why none answered).
void ask_master(const net::any_io_executor& ex, const config::RedisConfig& cfg,
                std::function<void(config::HostPort, std::string)> done);

// The configuration for talking to sentinel `s`: the same TLS and timeouts,
// no database or password (those are the master's).
config::RedisConfig sentinel_config(const config::RedisConfig& cfg, const config::HostPort& s);

// "<old> -> <new>" when a +switch-master message is about `master_name`,
// else "". The message: "<name> <old-ip> <old-port> <new-ip> <new-port>".
std::string switch_of(std::string_view message, const std::string& master_name);

class SentinelWatch {
 public:
  // `on_switch(description)` runs on `ex` for each switch of our master.
  SentinelWatch(net::any_io_executor ex, const config::RedisConfig& cfg, std::function<void(const std::string&)> on_switch);
  ~SentinelWatch();
  // On the executor.
  void start();
  void stop();

 private:
  std::shared_ptr<Subscriber> sub_;
};

}  // namespace sidecache::redis

#pragma once
// Redis Sentinel for the integration tests: a master, a replica of it and
// one sentinel (quorum 1, down-after 400 ms) of the test's own, on
// loopback, on ephemeral ports, in a temporary folder.
#include <string>

namespace sidecache::it {

class SentinelSet {
 public:
  static constexpr const char* kMaster = "mymaster";
  SentinelSet();
  ~SentinelSet();
  SentinelSet(const SentinelSet&) = delete;
  SentinelSet& operator=(const SentinelSet&) = delete;

  int sentinel_port() const { return sentinel_; }
  // The ports of the two data nodes; which is master changes on failover.
  int first_port() const { return first_; }
  int second_port() const { return second_; }
  // The master's port as the sentinel says now (0 if it does not answer).
  int master_port() const;
  int replica_port() const { return master_port() == first_ ? second_ : first_; }
  // redis-cli -p port args...; the output, trimmed.
  std::string cli(int port, const std::string& args) const;
  // Sends a signal to the redis-server on `port`.
  void signal(int port, int sig) const;
  // Waits until the sentinel names a master other than `old_port` and that
  // server says it is master; false if that does not happen.
  bool wait_failover(int old_port) const;
  // Daemon options' redis settings for mode: sentinel (the inside of redis: { }).
  // `dead_first`: a sentinel that does not answer is listed before the real one.
  std::string daemon_redis_extra(bool dead_first = false) const;
  std::string logs() const;

 private:
  std::string pidfile(int port) const;
  std::string dir_;
  int first_ = 0, second_ = 0, sentinel_ = 0;
};

}  // namespace sidecache::it

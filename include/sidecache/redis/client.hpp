#pragma once
// What the cache's store needs from Redis, whatever the topology: one
// server (Connection, standalone or Sentinel) or a cluster (ClusterClient,
// which sends each command to the master of its key's slot). Every call
// names its key, and runs on the client's executor.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sidecache/config/config.hpp"
#include "sidecache/redis/reply.hpp"

namespace sidecache::redis {

namespace net = boost::asio;

class Client {
 public:
  virtual ~Client() = default;
  // MGET keys... (one slot); see Connection::mget for `split` and `late`.
  virtual net::awaitable<Reply> mget(const std::vector<std::string>& keys, std::size_t split = 0, LateVerdict late = {},
                                     bool asking = false) = 0;
  // EVALSHA (EVAL on NOSCRIPT) with keys in one slot.
  virtual net::awaitable<Reply> eval(const Script& script, const std::vector<std::string>& keys,
                                     const std::vector<std::string_view>& args, std::size_t split = 0,
                                     LateVerdict late = {}, bool asking = false) = 0;
  // Any command, on the server that holds `key` (WAIT: the one the write
  // before it went to).
  virtual net::awaitable<Reply> command_for(std::string_view key, std::span<const std::string_view> argv,
                                            std::size_t split = 0, LateVerdict late = {},
                                            std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) = 0;
  // Moves whenever queued commands are written or a connection changes:
  // while it has not moved, a command issued earlier has not reached Redis.
  virtual std::uint64_t writes() const = 0;
  // Which connection a command for `key` would go out on now: a number no
  // other connection of the process has had, 0 while there is none. A fill
  // stores only over the connection its begin went over (a failover in
  // between may have lost what the begin wrote; docs/invalidation.md,
  // "Ordering without a shared clock").
  virtual std::uint64_t session(std::string_view key) const = 0;
  // Redis Cluster: the slots of each master, as the slot map has them now
  // (slots without a master are in none). One server: none.
  virtual std::vector<std::vector<std::uint16_t>> slots_by_master() const { return {}; }
  virtual const net::any_io_executor& executor() const = 0;
  virtual const config::RedisConfig& config() const = 0;
};

}  // namespace sidecache::redis

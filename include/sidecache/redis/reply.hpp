#pragma once
// What a Redis command comes back with, and the types every Redis client
// of ours shares (Connection, ClusterClient, the Client interface).
#include <array>
#include <functional>
#include <string>
#include <vector>

namespace sidecache::redis {

// A Lua script, run with EVALSHA (EVAL when Redis does not know it yet).
struct Script {
  explicit Script(std::string body);
  std::string body;
  std::string sha1;  // hex, computed locally
};

// What one command came back with.
struct Reply {
  enum class Status {
    value,        // a bulk string (GET hit)
    nil,          // a nil reply (GET miss)
    ok,           // a status or integer reply
    error,        // Redis answered with an error
    timeout,      // no answer within the configured timeout
    unavailable,  // not connected, or the connection dropped
  };
  Status status = Status::unavailable;
  std::string value;     // bulk string, after the first `split` bytes
  std::array<char, 32> head{};  // the first `split` bytes of the bulk string
  std::size_t head_len = 0;
  long long integer = 0;
  std::string error;
  std::vector<Reply> elements;  // an array reply

  bool is_value() const { return status == Status::value; }

  bool failed() const { return status == Status::error || status == Status::timeout || status == Status::unavailable; }
};

// Connection state as reported to /readyz.
enum class State { disconnected, connecting, connected };
const char* to_string(State s);

// The breaker's verdict on a command that timed out, given later: true when
// its reply arrived after all (Redis is alive, the reply was slow, as a large
// value is), false when the connection was lost or Redis is hung (nothing
// read for 4 x redis.timeout, at least 200 ms, while replies were due).
using LateVerdict = std::function<void(bool answered)>;

}  // namespace sidecache::redis

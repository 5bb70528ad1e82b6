#pragma once
// One connection to a Redis server: hiredis is the RESP codec (its command
// formatter and its reader), Asio owns the socket. The socket is TCP, a unix
// socket, or TLS over TCP (Asio SSL, OpenSSL), as the configuration says.
// Connection (commands) and Subscriber (pub/sub) run on it.
//
// - open() resolves, connects and, for TLS, shakes hands, within
//   redis.connect_timeout; then Events::on_open. In sentinel mode it first
//   asks the sentinels where the master is, and after connecting checks
//   that the server says it is the master (ROLE).
// - send() formats a command into the output buffer. The buffer goes out in
//   one write after the current handler returns (net::defer), so commands
//   issued in one pass of the event loop share one system call.
// - Every reply the reader completes goes to Events::on_reply, in order.
// - A failure (connect, handshake, read, write, a protocol error) ends the
//   stream with Events::on_close(why), once; close() ends it without events.
// Everything runs on the executor given; nothing here is thread-safe.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "sidecache/config/config.hpp"

struct redisReader;
struct redisReplyObjectFunctions;

namespace sidecache::redis {

namespace net = boost::asio;

class RespStream : public std::enable_shared_from_this<RespStream> {
 public:
  class Events {
   public:
    virtual void on_open() = 0;
    // A reply built by the reader's functions; freed by the stream after
    // this returns (move out what is kept).
    virtual void on_reply(void* reply) = 0;
    virtual void on_close(const std::string& why) = 0;

   protected:
    ~Events() = default;
  };

  // `fns` builds the replies (nullptr: hiredis' redisReply); the reader's
  // privdata is `privdata` (kReplyFunctions asks it how to split a value).
  RespStream(net::any_io_executor ex, config::RedisConfig cfg, redisReplyObjectFunctions* fns, void* privdata,
             Events* events);
  ~RespStream();
  RespStream(const RespStream&) = delete;
  RespStream& operator=(const RespStream&) = delete;

  void open();
  // Ends the stream; no event is called from now on.
  void close();
  // Queues one command; sent after the current handler returns.
  void send(std::span<const std::string_view> argv);

  // Counted up before every write of queued commands (Connection::writes()).
  void count_writes(std::uint64_t* counter) { writes_ = counter; }
  // Set to the time of every read.
  void note_reads(std::chrono::steady_clock::time_point* at) { last_read_ = at; }
  // "redis[<name>]" in log lines.
  const std::string& peer() const { return peer_; }

 private:
  struct Socket;  // the plain, unix or TLS socket (resp_stream.cpp)
  void connect();
  void connect_tcp();
  void ready();
  void check_role(void* reply);
  redisReader* role_reader();
  void handshake();
  void opened();
  void flush();
  void read_more();
  void fail(std::string why);
  std::string explain(const boost::system::error_code& ec, bool reading) const;

  net::any_io_executor ex_;
  config::RedisConfig cfg_;
  Events* events_;
  std::unique_ptr<Socket> sock_;
  redisReader* reader_ = nullptr;
  redisReader* role_reader_ = nullptr;  // sentinel mode: ROLE's answer
  bool checking_role_ = false;
  net::steady_timer connect_timer_;
  std::string peer_;
  std::string out_;     // commands queued since the last write
  std::string wbuf_;    // the write in flight
  std::array<char, 16 * 1024> rbuf_{};
  bool open_ = false, ended_ = false, writing_ = false, flush_due_ = false, read_any_ = false;
  std::uint64_t* writes_ = nullptr;
  std::chrono::steady_clock::time_point* last_read_ = nullptr;
};

}  // namespace sidecache::redis

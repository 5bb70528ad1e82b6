#pragma once
// One libpq connection driven by an Asio executor (docs/architecture.md,
// "Where the miss path's time goes"): the connection's socket waits in the
// executor's own reactor, so a fill's query costs its owner no thread
// hand-off. libpq's nonblocking API: PQconnectStart/PQconnectPoll to open,
// PQsend* to send, PQconsumeInput/PQisBusy/PQgetResult to read.
//
// Every call is made on the executor that owns the connection.
#include <libpq-fe.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace sidecache::pg {

namespace net = boost::asio;

// A PGresult, cleared with its owner.
struct ResultPtr {
  PGresult* r = nullptr;
  ResultPtr() = default;
  explicit ResultPtr(PGresult* p) : r(p) {}
  ResultPtr(ResultPtr&& o) noexcept : r(o.r) { o.r = nullptr; }
  ResultPtr& operator=(ResultPtr&& o) noexcept {
    if (this != &o) {
      if (r) PQclear(r);
      r = o.r;
      o.r = nullptr;
    }
    return *this;
  }
  ~ResultPtr() {
    if (r) PQclear(r);
  }
  PGresult* get() const { return r; }
};

// What one command (one PQsend* call) gave back.
struct Outcome {
  enum class Kind { ok, sql_error, broken, timed_out };
  Kind kind = Kind::broken;
  std::string sqlstate;  // sql_error
  std::string message;   // sql_error, broken
  ResultPtr result;      // ok: the command's (last) result
};

class AsyncConn {
 public:
  explicit AsyncConn(net::any_io_executor ex) : ex_(std::move(ex)), timer_(ex_) {}
  ~AsyncConn() { close(); }
  AsyncConn(const AsyncConn&) = delete;
  AsyncConn& operator=(const AsyncConn&) = delete;

  bool open() const { return pg_ != nullptr; }
  // Opens the connection, within `timeout`; the error ("" on success).
  net::awaitable<std::string> connect(const std::string& conninfo, std::chrono::milliseconds timeout);
  // Sends one command with `send` (a PQsend* call on the connection) and
  // reads every result it gives; past `deadline`, the connection is closed
  // and the outcome is timed_out.
  net::awaitable<Outcome> run(const std::function<int(PGconn*)>& send, std::chrono::steady_clock::time_point deadline);
  // Stops whatever the connection waits for (its outcome: broken).
  void abort();
  void close();

 private:
  // Waits until the socket is ready; false when the deadline passed, the
  // wait was aborted or the connection closed.
  net::awaitable<bool> wait(bool for_write);
  void arm(std::chrono::steady_clock::time_point deadline);
  void disarm();
  void watch_socket();
  std::string error_text() const;

  net::any_io_executor ex_;
  PGconn* pg_ = nullptr;
  std::unique_ptr<net::posix::stream_descriptor> sock_;
  net::steady_timer timer_;
  bool timed_out_ = false;
  bool aborted_ = false;
  bool armed_ = false;
};

}  // namespace sidecache::pg

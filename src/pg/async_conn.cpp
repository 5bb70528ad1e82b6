#include "async_conn.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace sidecache::pg {

using Clock = std::chrono::steady_clock;

std::string AsyncConn::error_text() const {
  std::string e = pg_ ? PQerrorMessage(pg_) : "no connection";
  while (!e.empty() && (e.back() == '\n' || e.back() == ' ')) e.pop_back();
  return e;
}

void AsyncConn::watch_socket() {
  // libpq may change the socket while it connects (another address of the
  // host): a new descriptor each time, never one registered for an old fd.
  if (sock_) sock_->release();
  sock_.reset();
  int fd = PQsocket(pg_);
  if (fd >= 0) sock_ = std::make_unique<net::posix::stream_descriptor>(ex_, fd);
}

void AsyncConn::arm(Clock::time_point deadline) {
  timed_out_ = false;
  armed_ = deadline != Clock::time_point::max();
  if (!armed_) return;
  timer_.expires_at(deadline);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled (or the connection is gone): touch nothing
    timed_out_ = true;
    if (sock_) sock_->cancel();
  });
}

void AsyncConn::disarm() {
  if (armed_) timer_.cancel();
  armed_ = false;
}

net::awaitable<bool> AsyncConn::wait(bool for_write) {
  if (!sock_) co_return false;
  auto [ec] = co_await sock_->async_wait(
      for_write ? net::posix::stream_descriptor::wait_write : net::posix::stream_descriptor::wait_read,
      net::as_tuple(net::use_awaitable));
  co_return !ec && !timed_out_ && !aborted_ && pg_;
}

net::awaitable<std::string> AsyncConn::connect(const std::string& conninfo, std::chrono::milliseconds timeout) {
  close();
  aborted_ = false;
  pg_ = PQconnectStart(conninfo.c_str());
  if (!pg_) co_return "out of memory";
  if (PQstatus(pg_) == CONNECTION_BAD) {
    std::string e = error_text();
    close();
    co_return e;
  }
  arm(Clock::now() + timeout);
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  std::string error;
  while (st != PGRES_POLLING_OK) {
    if (st == PGRES_POLLING_FAILED) {
      error = error_text();
      break;
    }
    watch_socket();
    if (!co_await wait(st == PGRES_POLLING_WRITING)) {
      error = timed_out_ ? "timeout expired" : "the connection attempt was stopped";
      break;
    }
    st = PQconnectPoll(pg_);
  }
  disarm();
  if (!error.empty()) {
    close();
    co_return error;
  }
  PQsetnonblocking(pg_, 1);
  co_return std::string();
}

net::awaitable<Outcome> AsyncConn::run(const std::function<int(PGconn*)>& send, Clock::time_point deadline) {
  Outcome out;
  if (!pg_ || !sock_) {
    out.message = "not connected";
    co_return out;
  }
  aborted_ = false;
  if (!send(pg_)) {
    out.message = error_text();
    co_return out;
  }
  arm(deadline);
  auto lost = [&] {
    out.kind = timed_out_ ? Outcome::Kind::timed_out : Outcome::Kind::broken;
    out.message = timed_out_ ? "no answer from PostgreSQL in time" : (aborted_ ? "stopped" : error_text());
    out.result = ResultPtr();
    disarm();
    close();
  };
  for (;;) {
    int f = PQflush(pg_);
    if (f == 0) break;
    if (f < 0 || !co_await wait(true)) {
      lost();
      co_return out;
    }
  }
  out.kind = Outcome::Kind::ok;
  for (;;) {
    while (PQisBusy(pg_)) {
      if (!co_await wait(false) || !PQconsumeInput(pg_)) {
        lost();
        co_return out;
      }
    }
    PGresult* r = PQgetResult(pg_);
    if (!r) break;
    ResultPtr held(r);
    if (PQresultStatus(r) == PGRES_FATAL_ERROR || PQresultStatus(r) == PGRES_BAD_RESPONSE) {
      if (out.kind == Outcome::Kind::ok) {
        const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        out.kind = Outcome::Kind::sql_error;
        out.sqlstate = state ? state : "";
        out.message = PQresultErrorMessage(r);
        while (!out.message.empty() && (out.message.back() == '\n' || out.message.back() == ' ')) out.message.pop_back();
      }
      continue;
    }
    out.result = std::move(held);
  }
  disarm();
  if (PQstatus(pg_) == CONNECTION_BAD) {
    // An error the server sent before closing (57P01 and the like) says
    // more than "connection lost"; with none, the connection broke.
    if (out.kind != Outcome::Kind::sql_error || out.sqlstate.empty()) {
      out.kind = Outcome::Kind::broken;
      if (out.message.empty()) out.message = error_text();
    }
    close();
  }
  co_return out;
}

void AsyncConn::abort() {
  aborted_ = true;
  if (sock_) sock_->cancel();
}

void AsyncConn::close() {
  disarm();
  if (sock_) sock_->release();
  sock_.reset();
  if (pg_) PQfinish(pg_);
  pg_ = nullptr;
}

}  // namespace sidecache::pg

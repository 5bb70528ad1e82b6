#include "sidecache/redis/resp_stream.hpp"

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/defer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/container/small_vector.hpp>

#include <optional>

#include "sidecache/redis/sentinel.hpp"
#include "tls_context.hpp"

namespace sidecache::redis {

using tcp = net::ip::tcp;
namespace ssl = net::ssl;

struct RespStream::Socket {
  explicit Socket(const net::any_io_executor& ex) : resolver(ex) {}
  tcp::resolver resolver;
  std::optional<tcp::socket> plain;  // TCP, until TLS takes it over
  std::optional<net::local::stream_protocol::socket> local;
  std::shared_ptr<ssl::context> tls_ctx;
  std::optional<ssl::stream<tcp::socket>> tls;

  // f(the stream in use)
  template <class F>
  void with(F&& f) {
    if (tls) f(*tls);
    else if (local) f(*local);
    else if (plain) f(*plain);
  }
  void* ssl_handle() { return tls ? tls->native_handle() : nullptr; }
  void shut() {
    boost::system::error_code ignored;
    resolver.cancel();
    if (tls) tls->lowest_layer().close(ignored);
    if (local) local->close(ignored);
    if (plain) plain->close(ignored);
  }
};

RespStream::RespStream(net::any_io_executor ex, config::RedisConfig cfg, redisReplyObjectFunctions* fns,
                       void* privdata, Events* events)
    : ex_(std::move(ex)), cfg_(std::move(cfg)), events_(events), sock_(std::make_unique<Socket>(ex_)),
      connect_timer_(ex_) {
  reader_ = fns ? redisReaderCreateWithFunctions(fns) : redisReaderCreate();
  reader_->privdata = privdata;
  peer_ = cfg_.endpoint();
}

RespStream::~RespStream() {
  close();
  redisReaderFree(reader_);
  if (role_reader_) redisReaderFree(role_reader_);
}

redisReader* RespStream::role_reader() {
  if (!role_reader_) role_reader_ = redisReaderCreate();
  return role_reader_;
}

void RespStream::close() {
  events_ = nullptr;
  ended_ = true;
  open_ = false;
  connect_timer_.cancel();
  sock_->shut();
}

void RespStream::fail(std::string why) {
  if (ended_) return;
  Events* ev = events_;
  close();
  if (ev) ev->on_close(why);
}

void RespStream::open() {
  if (cfg_.mode != config::RedisMode::sentinel) return connect();
  // The master's address first, from the sentinels.
  ask_master(ex_, cfg_, [self = shared_from_this()](config::HostPort master, std::string why) {
    if (self->ended_) return;
    if (!why.empty()) return self->fail(why);
    self->cfg_.host = master.host;
    self->cfg_.port = master.port;
    self->peer_ = master.host + ":" + std::to_string(master.port);
    self->connect();
  });
}

void RespStream::connect() {
  connect_timer_.expires_after(cfg_.connect_timeout);
  connect_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec && !self->open_) self->fail(self->cfg_.tls() ? "connect or TLS handshake timed out" : "connect timed out");
  });
  if (cfg_.is_unix) {
    sock_->local.emplace(ex_);
    sock_->local->async_connect(net::local::stream_protocol::endpoint(cfg_.path),
                                [self = shared_from_this()](const boost::system::error_code& ec) {
                                  if (self->ended_) return;
                                  if (ec) return self->fail(ec.message());
                                  self->opened();
                                });
    return;
  }
  boost::system::error_code ec;
  auto addr = net::ip::make_address(cfg_.host, ec);
  if (!ec) {
    sock_->plain.emplace(ex_);
    sock_->plain->async_connect(tcp::endpoint(addr, cfg_.port), [self = shared_from_this()](const boost::system::error_code& e) {
      if (self->ended_) return;
      if (e) return self->fail(e.message());
      self->connect_tcp();
    });
    return;
  }
  sock_->resolver.async_resolve(cfg_.host, std::to_string(cfg_.port),
                                [self = shared_from_this()](const boost::system::error_code& e, tcp::resolver::results_type found) {
                                  if (self->ended_) return;
                                  if (e) return self->fail("cannot resolve " + self->cfg_.host + ": " + e.message());
                                  self->sock_->plain.emplace(self->ex_);
                                  net::async_connect(*self->sock_->plain, found,
                                                     [self](const boost::system::error_code& e2, const tcp::endpoint&) {
                                                       if (self->ended_) return;
                                                       if (e2) return self->fail(e2.message());
                                                       self->connect_tcp();
                                                     });
                                });
}

void RespStream::connect_tcp() {
  boost::system::error_code ignored;
  sock_->plain->set_option(tcp::no_delay(true), ignored);
  // Keepalive finds a peer that vanished without a word (the subscriber
  // waits on reads that may never come).
  sock_->plain->set_option(net::socket_base::keep_alive(true), ignored);
  if (!cfg_.tls()) return opened();
  handshake();
}

void RespStream::handshake() {
  std::string why;
  sock_->tls_ctx = tls_context(cfg_, why);
  if (!sock_->tls_ctx) return fail("TLS: " + why);
  sock_->tls.emplace(std::move(*sock_->plain), *sock_->tls_ctx);
  sock_->plain.reset();
  if (why = tls_prepare(sock_->ssl_handle(), cfg_); !why.empty()) return fail("TLS: " + why);
  sock_->tls->async_handshake(ssl::stream_base::client, [self = shared_from_this()](const boost::system::error_code& ec) {
    if (self->ended_) return;
    if (ec) return self->fail(self->explain(ec, false));
    self->opened();
  });
}

void RespStream::opened() {
  open_ = true;
  read_more();
  if (cfg_.mode == config::RedisMode::sentinel) {
    // The sentinels' answer can be a moment old during a failover: the
    // server must say it is the master before anything else is sent.
    std::string_view role[] = {"ROLE"};
    checking_role_ = true;
    send(role);
    return;
  }
  ready();
}

void RespStream::ready() {
  connect_timer_.cancel();
  if (events_) events_->on_open();
}

void RespStream::check_role(void* r) {
  auto* reply = static_cast<redisReply*>(r);
  checking_role_ = false;
  std::string role = reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 && reply->element[0]->type == REDIS_REPLY_STRING
                         ? std::string(reply->element[0]->str, reply->element[0]->len)
                         : reply->type == REDIS_REPLY_ERROR ? std::string(reply->str, reply->len) : "?";
  if (role != "master")
    return fail("the sentinels named " + peer_ + " as master '" + cfg_.master_name + "', but it says it is " + role +
                " (a failover in progress): asking them again");
  ready();
}

std::string RespStream::explain(const boost::system::error_code& ec, bool reading) const {
  std::string what = ec.message();
  if (cfg_.tls()) return tls_failure(sock_->ssl_handle(), what, cfg_);
  if (reading && ec == net::error::eof)
    return read_any_ ? "closed by the server"
                     : "closed by the server before it answered (if it speaks TLS on this port, use a rediss:// URL)";
  return what;
}

void RespStream::send(std::span<const std::string_view> argv) {
  boost::container::small_vector<const char*, 16> args(argv.size());
  boost::container::small_vector<std::size_t, 16> lens(argv.size());
  for (std::size_t i = 0; i < argv.size(); ++i) args[i] = argv[i].data(), lens[i] = argv[i].size();
  char* cmd = nullptr;
  int n = redisFormatCommandArgv(&cmd, static_cast<int>(argv.size()), args.data(), lens.data());
  if (n < 0) throw std::bad_alloc();
  out_.append(cmd, static_cast<std::size_t>(n));
  redisFreeCommand(cmd);
  if (flush_due_ || writing_) return;
  flush_due_ = true;
  net::defer(ex_, [self = shared_from_this()] {
    self->flush_due_ = false;
    self->flush();
  });
}

void RespStream::flush() {
  if (!open_ || writing_ || out_.empty()) return;
  writing_ = true;
  wbuf_.swap(out_);
  out_.clear();
  if (writes_) ++*writes_;
  sock_->with([&](auto& s) {
    net::async_write(s, net::buffer(wbuf_), [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
      self->writing_ = false;
      if (self->ended_) return;
      if (ec) return self->fail(self->explain(ec, false));
      self->wbuf_.clear();
      self->flush();
    });
  });
}

void RespStream::read_more() {
  sock_->with([&](auto& s) {
    s.async_read_some(net::buffer(rbuf_), [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
      if (self->ended_) return;
      if (ec) return self->fail(self->explain(ec, true));
      if (self->last_read_) *self->last_read_ = std::chrono::steady_clock::now();
      self->read_any_ = true;
      if (self->checking_role_) {
        // ROLE's answer, read with hiredis' own reply objects; nothing else
        // was sent yet, so nothing follows it.
        redisReader* rr = self->role_reader();
        void* reply = nullptr;
        if (redisReaderFeed(rr, self->rbuf_.data(), n) != REDIS_OK || redisReaderGetReply(rr, &reply) != REDIS_OK)
          return self->fail("protocol error in the answer to ROLE");
        if (!reply) return self->read_more();
        self->check_role(reply);
        freeReplyObject(reply);
        if (self->ended_) return;
        return self->read_more();
      }
      redisReader* rd = self->reader_;
      if (redisReaderFeed(rd, self->rbuf_.data(), n) != REDIS_OK) return self->fail("cannot buffer the reply");
      for (;;) {
        void* reply = nullptr;
        if (redisReaderGetReply(rd, &reply) != REDIS_OK) return self->fail(std::string("protocol error: ") + rd->errstr);
        if (!reply) break;
        if (self->events_) self->events_->on_reply(reply);
        rd->fn->freeObject(reply);
        if (self->ended_) return;
      }
      self->read_more();
    });
  });
}

}  // namespace sidecache::redis

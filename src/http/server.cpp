// HTTP/1.1 over Beast, with C++20 coroutines (after Beast's
// example/http/server/awaitable). Sessions are templated on the protocol so
// TCP and unix sockets share one implementation.
#include "sidecache/http/server.hpp"
#include "sidecache/http/router.hpp"

#include <spdlog/spdlog.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <array>
#include <filesystem>
#include <list>
#include <mutex>

namespace sidecache::http {
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using unix_proto = net::local::stream_protocol;
using net::use_awaitable;
constexpr auto tuple_awaitable = net::as_tuple(net::use_awaitable);

namespace {

// A connection's stop switch, so drain() can close idle keep-alive
// connections (busy ones close after their answer).
struct SessionCtl {
  net::any_io_executor ex;
  std::function<void()> close;
  bool busy = false;
  bool alive = true;    // false once the session ended; checked on its executor
  unsigned served = 0;  // answers written; a connection that has sent nothing yet keeps its first request
};

}  // namespace

struct Server::Impl {
  const config::Config& cfg;
  Handler& handler;
  std::vector<net::io_context*> workers;
  std::unique_ptr<tcp::acceptor> tcp_acceptor;
  std::unique_ptr<unix_proto::acceptor> unix_acceptor;
  std::atomic<bool> draining{false};
  std::atomic<std::size_t> open{0};
  std::atomic<std::size_t> next_worker{0};
  std::atomic<std::uint64_t> refused_connections{0};
  std::mutex mu;
  std::list<std::shared_ptr<SessionCtl>> sessions;

  Impl(const config::Config& c, Handler& h, std::vector<net::io_context*> w) : cfg(c), handler(h), workers(std::move(w)) {}

  // ---- writing an answer ------------------------------------------------------
  // The status line and headers are formatted into one string and written
  // with the body in one gather write (writev): no serializer, no copy of
  // the body. Beast's serializer cost more CPU per hit than the rest of the
  // hit path together (see docs/architecture.md).
  template <class Stream>
  net::awaitable<void> write_answer(Stream& stream, Answer&& a, unsigned version, bool keep_alive,
                                    bool head_only = false) {
    std::string head;
    head.reserve(192 + a.content_type.size());
    head.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    head.append(std::to_string(a.status));
    head.push_back(' ');
    auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(a.status));
    head.append(reason.data(), reason.size());
    head.append("\r\nServer: sidecache\r\nContent-Type: ");
    head.append(a.content_type);
    for (const auto& [k, v] : a.headers) {
      head.append("\r\n");
      head.append(k);
      head.append(": ");
      head.append(v);
    }
    head.append("\r\nContent-Length: ");
    head.append(std::to_string(a.body.size()));
    if (version == 10 && keep_alive) head.append("\r\nConnection: keep-alive");
    if (version != 10 && !keep_alive) head.append("\r\nConnection: close");
    head.append("\r\n\r\n");
    std::array<net::const_buffer, 2> bufs;
    bufs[0] = net::buffer(head);
    bufs[1] = head_only ? net::const_buffer() : net::buffer(a.body);
    co_await net::async_write(stream, bufs, tuple_awaitable);
  }

  // ---- one connection -------------------------------------------------------
  template <class Protocol>
  net::awaitable<void> session(typename Protocol::socket socket, unsigned worker) {
    using Stream = beast::basic_stream<Protocol, net::any_io_executor, beast::unlimited_rate_policy>;
    Stream stream(std::move(socket));
    auto ctl = std::make_shared<SessionCtl>();
    ctl->ex = stream.get_executor();
    ctl->close = [&stream, c = ctl.get()] {
      // Idle keep-alive connections close; a connection that has not sent
      // its first request yet (it may be on the wire) gets it answered.
      if (c->alive && !c->busy && c->served > 0) {
        boost::system::error_code ignored;
        stream.socket().shutdown(Protocol::socket::shutdown_both, ignored);
        stream.cancel();
      }
    };
    std::list<std::shared_ptr<SessionCtl>>::iterator self;
    {
      std::lock_guard lock(mu);
      sessions.push_front(ctl);
      self = sessions.begin();
    }
    beast::flat_buffer buffer;
    // The request line is the method, the target and the version: at most
    // the target's limit plus this much.
    constexpr std::size_t kRequestLineExtra = 64;
    const std::size_t header_limit = cfg.http.max_header_bytes + cfg.http.max_target_bytes + kRequestLineExtra;
    // The one answer for each limit a request can pass.
    auto too_large = [this](unsigned status) {
      if (status == 413)
        return error_answer(413, "body_too_large", "the request body exceeds " + std::to_string(cfg.http.max_body_bytes) + " bytes");
      if (status == 414)
        return error_answer(414, "uri_too_long", "the request target exceeds " + std::to_string(cfg.http.max_target_bytes) + " bytes");
      return error_answer(431, "header_too_large", "request headers exceed " + std::to_string(cfg.http.max_header_bytes) + " bytes");
    };

    for (;;) {
      if (draining && ctl->served > 0) break;
      // Wait for the first byte of the next request under the idle timeout,
      // then give the whole header the (shorter) header timeout.
      if (buffer.size() == 0) {
        stream.expires_after(cfg.http.idle_timeout);
        auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), tuple_awaitable);
        if (ec) break;
        buffer.commit(n);
      }
      ctl->busy = true;
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(header_limit));
      parser.body_limit(cfg.http.max_body_bytes);
      stream.expires_after(cfg.http.header_timeout);
      auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, tuple_awaitable);
      if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout || ec == net::error::operation_aborted ||
          ec == net::error::connection_reset || ec == net::error::eof)
        break;
      if (ec == bhttp::error::body_limit) {  // a declared Content-Length past the limit
        co_await write_answer(stream, too_large(413), 11, false);
        break;
      }
      if (ec == bhttp::error::header_limit) {
        // Beast counts the request line with the headers: a line that alone
        // does not fit is a target too long (414, as nginx answers), the
        // rest is headers too large (431).
        std::string_view head(static_cast<const char*>(buffer.data().data()), buffer.size());
        std::size_t eol = head.find("\r\n");
        bool line_too_long = eol == std::string_view::npos || eol > cfg.http.max_target_bytes + kRequestLineExtra;
        co_await write_answer(stream, too_large(line_too_long ? 414 : 431), 11, false);
        break;
      }
      if (ec) {
        co_await write_answer(stream, error_answer(400, "bad_request", "malformed HTTP request: " + ec.message()), 11, false);
        break;
      }
      auto& req = parser.get();
      unsigned version = req.version();
      std::size_t field_bytes = 0;
      for (const auto& f : req) field_bytes += f.name_string().size() + f.value().size() + 4;
      if (req.target().size() > cfg.http.max_target_bytes) {
        co_await write_answer(stream, too_large(414), version, false);
        break;
      }
      if (field_bytes > cfg.http.max_header_bytes) {
        co_await write_answer(stream, too_large(431), version, false);
        break;
      }
      if (req.count(bhttp::field::content_length) && req.count(bhttp::field::transfer_encoding)) {
        // Request smuggling guard (RFC 9112 6.1): never guess which one wins.
        co_await write_answer(stream, error_answer(400, "bad_request", "Content-Length and Transfer-Encoding must not both be sent"), version, false);
        break;
      }
      if (!parser.is_done()) {
        auto [bec, bn] = co_await bhttp::async_read(stream, buffer, parser, tuple_awaitable);
        if (bec == bhttp::error::body_limit) {
          co_await write_answer(stream, too_large(413), version, false);
          break;
        }
        if (bec) {
          if (bec != beast::error::timeout && bec != bhttp::error::end_of_stream)
            co_await write_answer(stream, error_answer(400, "bad_request", "malformed request body: " + bec.message()), version, false);
          break;
        }
      }
      stream.expires_never();

      Request r;
      // HEAD is GET without the body (RFC 9110 9.3.2): routed as GET, and
      // the answer's head says the length the body would have.
      const bool head_only = req.method() == bhttp::verb::head;
      r.method = head_only ? std::string_view("GET") : std::string_view(req.method_string());
      r.target = origin_form(req.target());
      r.body = req.body();
      r.worker = worker;
      if (auto it = req.find(bhttp::field::authorization); it != req.end()) r.authorization = it->value();
      if (auto it = req.find("X-Request-Id"); it != req.end()) r.request_id = it->value();
      for (auto it = req.find(bhttp::field::cache_control); it != req.end() && it->name() == bhttp::field::cache_control; ++it)
        if (beast::iequals(it->value(), "no-cache") || it->value().find("no-cache") != std::string_view::npos) r.no_cache = true;
      if (auto it = req.find(bhttp::field::pragma); it != req.end() && it->value().find("no-cache") != std::string_view::npos)
        r.no_cache = true;

      Answer a;
      try {
        a = co_await handler.handle(r);
      } catch (const std::exception& e) {
        spdlog::error("http: handler failed: {}", e.what());
        a = error_answer(500, "internal", "internal error");
      }
      bool keep = req.keep_alive() && !a.close && !draining;
      co_await write_answer(stream, std::move(a), version, keep, head_only);
      ctl->busy = false;
      ++ctl->served;
      if (!keep) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(Protocol::socket::shutdown_send, ignored);
    ctl->alive = false;
    {
      std::lock_guard lock(mu);
      sessions.erase(self);
    }
    --open;
  }

  template <class Acceptor>
  net::awaitable<void> accept_loop(Acceptor& acceptor) {
    using Protocol = typename Acceptor::protocol_type;
    for (;;) {
      unsigned w = static_cast<unsigned>(next_worker++ % workers.size());
      auto [ec, socket] = co_await acceptor.async_accept(workers[w]->get_executor(), tuple_awaitable);
      if (ec == net::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) {
        // EMFILE and friends: log and back off briefly instead of spinning.
        spdlog::warn("http: accept failed: {}", ec.message());
        net::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(50));
        co_await t.async_wait(tuple_awaitable);
        continue;
      }
      if (open.load() >= cfg.http.max_connections) {
        // At the limit: close at once rather than run out of descriptors.
        boost::system::error_code ignored;
        socket.close(ignored);
        if (++refused_connections % 1000 == 1)
          spdlog::warn("http: {} connections open (http.max_connections); refusing new ones", open.load());
        continue;
      }
      if constexpr (std::is_same_v<Protocol, tcp>) {
        boost::system::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
      }
      ++open;  // counted at accept, so a burst cannot overshoot the limit
      net::co_spawn(workers[w]->get_executor(), session<Protocol>(std::move(socket), w), [](std::exception_ptr e) {
        if (!e) return;
        try { std::rethrow_exception(e); } catch (const std::exception& ex) { spdlog::error("http: session ended: {}", ex.what()); }
      });
    }
  }
};

Server::Server(const config::Config& cfg, Handler& handler, std::vector<net::io_context*> workers)
    : impl_(std::make_unique<Impl>(cfg, handler, std::move(workers))) {}

Server::~Server() = default;

void Server::start() {
  auto& io = *impl_->workers.at(0);
  const auto& l = impl_->cfg.listen;
  auto log_spawn_error = [](std::exception_ptr e) {
    if (!e) return;
    try { std::rethrow_exception(e); } catch (const std::exception& ex) { spdlog::error("http: acceptor stopped: {}", ex.what()); }
  };
  if (l.is_unix) {
    std::error_code ec;
    std::filesystem::remove(l.path, ec);  // a stale socket from an earlier run
    impl_->unix_acceptor = std::make_unique<unix_proto::acceptor>(io);
    unix_proto::endpoint ep(l.path);
    impl_->unix_acceptor->open(ep.protocol());
    impl_->unix_acceptor->bind(ep);
    ::chmod(l.path.c_str(), l.unix_mode);
    if (!l.unix_group.empty()) {
      struct group* g = ::getgrnam(l.unix_group.c_str());
      if (!g || ::chown(l.path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0)
        throw std::runtime_error("cannot give the unix socket to group '" + l.unix_group + "'");
    }
    impl_->unix_acceptor->listen(net::socket_base::max_listen_connections);
    net::co_spawn(io, impl_->accept_loop(*impl_->unix_acceptor), log_spawn_error);
  } else {
    auto addr = net::ip::make_address(l.host);
    tcp::endpoint ep(addr, l.port);
    impl_->tcp_acceptor = std::make_unique<tcp::acceptor>(io);
    impl_->tcp_acceptor->open(ep.protocol());
    impl_->tcp_acceptor->set_option(net::socket_base::reuse_address(true));
    impl_->tcp_acceptor->bind(ep);
    impl_->tcp_acceptor->listen(net::socket_base::max_listen_connections);
    net::co_spawn(io, impl_->accept_loop(*impl_->tcp_acceptor), log_spawn_error);
  }
}

void Server::drain() {
  impl_->draining = true;
  auto& io = *impl_->workers.at(0);
  net::post(io, [impl = impl_.get()] {
    boost::system::error_code ignored;
    if (impl->tcp_acceptor) impl->tcp_acceptor->close(ignored);
    if (impl->unix_acceptor) {
      impl->unix_acceptor->close(ignored);
      std::error_code ec;
      std::filesystem::remove(impl->cfg.listen.path, ec);
    }
  });
  std::lock_guard lock(impl_->mu);
  for (auto& s : impl_->sessions) net::post(s->ex, [s] { s->close(); });
}

std::size_t Server::connections() const { return impl_->open.load(); }

unsigned short Server::port() const {
  return impl_->tcp_acceptor ? impl_->tcp_acceptor->local_endpoint().port() : 0;
}

}  // namespace sidecache::http

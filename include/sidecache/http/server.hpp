#pragma once
// The HTTP/1.1 server: one acceptor, connections spread over the worker
// io_contexts, one coroutine per connection. It enforces the protocol limits
// (431/414/413/400, header timeout) and hands each request to a Handler.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <memory>
#include <string_view>
#include <vector>

#include "sidecache/config/config.hpp"
#include "sidecache/http/answer.hpp"

namespace sidecache::http {

namespace net = boost::asio;

// One parsed request, as the handler sees it.
struct Request {
  std::string_view method;
  std::string_view target;
  std::string_view body;
  std::string_view authorization;  // the Authorization header, if any
  std::string_view request_id;     // X-Request-Id as sent, if any
  bool no_cache = false;  // Cache-Control: no-cache (or Pragma: no-cache)
  unsigned worker = 0;    // index of the worker thread running this request
};

// What the server calls for every request.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual net::awaitable<Answer> handle(Request req) = 0;
};

class Server {
 public:
  Server(const config::Config& cfg, Handler& handler, std::vector<net::io_context*> workers);
  ~Server();

  // Binds and listens (throws std::system_error on failure), starts accepting.
  void start();
  // Stops accepting; connections finish their current request and close.
  void drain();
  // Connections still open.
  std::size_t connections() const;
  // The bound TCP port (useful with port 0).
  unsigned short port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sidecache::http

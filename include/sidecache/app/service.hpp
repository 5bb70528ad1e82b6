#pragma once
// The read path: route -> Redis -> (singleflight) -> PostgreSQL -> store ->
// answer. One Service serves every worker; each worker has its own Redis
// connection, the singleflight table and the PostgreSQL pool are shared.
#include <boost/asio/io_context.hpp>

#include <memory>
#include <vector>

#include "sidecache/cache/singleflight.hpp"
#include "sidecache/cache/value.hpp"
#include "sidecache/config/config.hpp"
#include "sidecache/http/router.hpp"
#include "sidecache/http/server.hpp"
#include "sidecache/pg/pool.hpp"
#include "sidecache/redis/connection.hpp"

namespace sidecache::app {

namespace net = boost::asio;

// What one fill (or the leader's second look in Redis) produced; shared with
// every request that collapsed onto it.
struct Outcome {
  unsigned status = 500;
  std::string body;  // JSON result, or the JSON error body
  cache::ValueHeader header;
  bool from_cache = false;  // the leader found a fresh value in Redis after all
  bool stored = false;
  std::string retry_after;  // set on 503
};

class Service : public http::Handler {
 public:
  Service(const config::Config& cfg, std::vector<net::io_context*> workers);
  ~Service() override;

  // Starts the pool and the Redis connections.
  void start();
  // Closes the Redis connections and the pool; call after the server drained.
  void stop();

  net::awaitable<http::Answer> handle(http::Request req) override;

  const pg::Pool& pool() const { return pool_; }

 private:
  net::awaitable<http::Answer> get_entity(const http::EntityRequest& req, bool no_cache, unsigned worker);
  net::awaitable<Outcome> fill(const http::EntityRequest& req);
  net::awaitable<bool> store(redis::Connection& redis, const http::EntityRequest& req, Outcome& o);
  net::awaitable<http::Answer> readyz();

  const config::Config& cfg_;
  std::vector<net::io_context*> workers_;
  std::vector<std::shared_ptr<redis::Connection>> redis_;
  pg::Pool pool_;
  cache::Singleflight<Outcome> flights_;
};

}  // namespace sidecache::app

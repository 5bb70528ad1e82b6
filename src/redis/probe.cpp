#include "sidecache/redis/probe.hpp"

#include <hiredis/hiredis.h>

#include <boost/asio/io_context.hpp>

#include "sidecache/redis/resp_stream.hpp"
#include "sidecache/redis/tls.hpp"

namespace sidecache::redis {

std::vector<std::vector<std::string>> setup_commands(const config::RedisConfig& cfg) {
  std::vector<std::vector<std::string>> out;
  if (!cfg.password.empty()) {
    if (cfg.username.empty()) out.push_back({"AUTH", cfg.password});
    else out.push_back({"AUTH", cfg.username, cfg.password});
  }
  if (cfg.db != 0) out.push_back({"SELECT", std::to_string(cfg.db)});
  return out;
}

namespace {

// A one-off, blocking conversation on a stream of its own: set the
// connection up as the daemon's are (over TLS too), then send `ask` and
// collect the answers. Returns "" or why it could not (unreachable, setup
// refused, no answer within connect_timeout + timeout).
class Probe final : private RespStream::Events {
 public:
  Probe(const config::RedisConfig& cfg, std::vector<std::vector<std::string>> ask)
      : stream_(std::make_shared<RespStream>(io_.get_executor(), cfg, nullptr, nullptr, static_cast<Events*>(this))), ask_(std::move(ask)),
        setup_(setup_commands(cfg)), limit_(2 * cfg.connect_timeout + cfg.timeout) {}
  ~Probe() { stream_->close(); }

  // The answers to `ask` (its text; an error's text with `errors[i]` set).
  std::string run() {
    stream_->open();
    io_.run_for(limit_);
    if (why_.empty() && answers.size() < ask_.size()) why_ = "no answer within " + std::to_string(limit_.count()) + " ms";
    return why_;
  }
  std::vector<std::string> answers;
  std::vector<bool> errors;
  const std::string& server() const { return stream_->peer(); }

 private:
  void on_open() override {
    for (const auto* list : {&setup_, &ask_})
      for (const auto& argv : *list) {
        std::vector<std::string_view> args(argv.begin(), argv.end());
        stream_->send(args);
      }
  }
  void on_reply(void* r) override {
    auto* reply = static_cast<redisReply*>(r);
    bool error = reply->type == REDIS_REPLY_ERROR;
    std::string text = reply->str ? std::string(reply->str, reply->len) : std::string();
    if (seen_++ < setup_.size()) {
      if (error) finish(text);
      return;
    }
    answers.push_back(text);
    errors.push_back(error);
    if (answers.size() == ask_.size()) finish("");
  }
  void on_close(const std::string& why) override { finish(why); }
  void finish(const std::string& why) {
    why_ = why;
    stream_->close();
    io_.stop();
  }

  net::io_context io_;
  std::shared_ptr<RespStream> stream_;
  std::vector<std::vector<std::string>> ask_, setup_;
  std::chrono::milliseconds limit_;
  std::size_t seen_ = 0;
  std::string why_;
};

// "" or why this server cannot be used as the one standalone Redis.
std::string topology_of(const Probe& p, std::size_t info_at) {
  if (p.errors[info_at]) return {};  // INFO not allowed (ACL): not known
  if (p.answers[info_at].find("cluster_enabled:1") == std::string::npos) return {};
  return "this Redis is a Redis Cluster node (cluster_enabled:1), and sidecache speaks to one standalone Redis: its "
         "reads and fills need a value and its watermarks on one server. Point redis.url at a standalone Redis (or "
         "a Sentinel-managed primary); Redis Cluster is not supported yet";
}

}  // namespace

std::string probe(const config::RedisConfig& r, std::string* server) {
  if (std::string why = tls_setup_problem(r); !why.empty()) return why;
  Probe p(r, {{"PING"}, {"INFO", "cluster"}});
  if (std::string why = p.run(); !why.empty()) return why;
  if (server) *server = p.server();
  if (p.errors[0]) return p.answers[0];
  return topology_of(p, 1);
}

std::string topology_problem(const config::RedisConfig& r) {
  Probe p(r, {{"INFO", "cluster"}});
  if (!p.run().empty()) return {};  // not reachable now: the daemon serves from PostgreSQL meanwhile
  return topology_of(p, 0);
}

}  // namespace sidecache::redis

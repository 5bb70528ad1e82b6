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

// "" or why this server does not fit redis.mode.
std::string topology_of(const Probe& p, std::size_t info_at, config::RedisMode mode) {
  if (p.errors[info_at]) return {};  // INFO not allowed (ACL): not known
  const bool node = p.answers[info_at].find("cluster_enabled:1") != std::string::npos;
  if (mode == config::RedisMode::cluster) {
    if (!node)
      return "this Redis is not a Redis Cluster node (cluster_enabled:0), and redis.mode is cluster: set "
             "redis.mode: standalone for one server, or point redis.url at a node of the cluster";
    return {};
  }
  if (!node) return {};
  return "this Redis is a Redis Cluster node (cluster_enabled:1), and redis.mode is " +
         std::string(mode == config::RedisMode::sentinel ? "sentinel" : "standalone") +
         ": a cluster spreads a tenant's keys over nodes that one connection cannot reach. Set redis.mode: cluster "
         "(redis.url: one node, redis.nodes: a few more)";
}

// In cluster mode, CLUSTER INFO's verdict on the cluster as a whole.
std::string cluster_state_of(const Probe& p, std::size_t at) {
  if (p.errors[at] || p.answers[at].find("cluster_state:ok") != std::string::npos) return {};
  return "the cluster says it is not serving every slot (cluster_state is not ok): reads of the slots without a "
         "master go to PostgreSQL until it is repaired";
}

}  // namespace

std::string probe(const config::RedisConfig& r, std::string* server) {
  if (std::string why = tls_setup_problem(r); !why.empty()) return why;
  Probe p(r, {{"PING"}, {"INFO", "cluster"}, {"CLUSTER", "INFO"}});
  if (std::string why = p.run(); !why.empty()) return why;
  if (server) *server = p.server();
  if (p.errors[0]) return p.answers[0];
  if (std::string why = topology_of(p, 1, r.mode); !why.empty()) return why;
  return r.mode == config::RedisMode::cluster ? cluster_state_of(p, 2) : std::string();
}

std::string topology_problem(const config::RedisConfig& r) {
  Probe p(r, {{"INFO", "cluster"}});
  if (!p.run().empty()) return {};  // not reachable now: the daemon serves from PostgreSQL meanwhile
  return topology_of(p, 0, r.mode);
}

}  // namespace sidecache::redis

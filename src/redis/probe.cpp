#include "sidecache/redis/probe.hpp"

#include <hiredis/hiredis.h>

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

// Runs one command; returns "" (its text in `out`) or the error.
std::string run(redisContext* rc, const std::vector<std::string>& argv, std::string& out) {
  std::vector<const char*> args;
  std::vector<std::size_t> lens;
  for (const auto& a : argv) args.push_back(a.data()), lens.push_back(a.size());
  auto* reply = static_cast<redisReply*>(redisCommandArgv(rc, static_cast<int>(args.size()), args.data(), lens.data()));
  if (!reply) return std::string("no answer: ") + rc->errstr;
  std::string err = reply->type == REDIS_REPLY_ERROR ? std::string(reply->str, reply->len) : "";
  if (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS) out.assign(reply->str, reply->len);
  freeReplyObject(reply);
  return err;
}

// A blocking connection for one-off questions; runs the setup commands.
// nullptr with `why` set when Redis cannot be reached or refuses the setup.
redisContext* open_probe(const config::RedisConfig& r, std::string& why) {
  timeval tv{static_cast<long>(r.connect_timeout.count() / 1000), static_cast<long>((r.connect_timeout.count() % 1000) * 1000)};
  redisContext* rc = r.is_unix ? redisConnectUnixWithTimeout(r.path.c_str(), tv) : redisConnectWithTimeout(r.host.c_str(), r.port, tv);
  if (!rc) {
    why = "out of memory";
    return nullptr;
  }
  if (rc->err) {
    why = rc->errstr;
    redisFree(rc);
    return nullptr;
  }
  redisSetTimeout(rc, tv);
  for (const auto& c : setup_commands(r)) {
    std::string out;
    why = run(rc, c, out);
    if (!why.empty()) {
      redisFree(rc);
      return nullptr;
    }
  }
  return rc;
}

// "" or why this server cannot be used as the one standalone Redis.
std::string topology_of(redisContext* rc) {
  std::string info;
  if (!run(rc, {"INFO", "cluster"}, info).empty()) return {};  // INFO not allowed (ACL): not known
  if (info.find("cluster_enabled:1") == std::string::npos) return {};
  return "this Redis is a Redis Cluster node (cluster_enabled:1), and sidecache speaks to one standalone Redis: its "
         "reads and fills need a value and its watermarks on one server. Point redis.url at a standalone Redis (or "
         "a Sentinel-managed primary); Redis Cluster is not supported yet";
}

}  // namespace

std::string probe(const config::RedisConfig& r) {
  std::string why;
  redisContext* rc = open_probe(r, why);
  if (!rc) return why;
  std::string pong;
  why = run(rc, {"PING"}, pong);
  if (why.empty()) why = topology_of(rc);
  redisFree(rc);
  return why;
}

std::string topology_problem(const config::RedisConfig& r) {
  std::string unreachable;
  redisContext* rc = open_probe(r, unreachable);
  if (!rc) return {};  // not reachable now: the daemon serves from PostgreSQL meanwhile
  std::string why = topology_of(rc);
  redisFree(rc);
  return why;
}

}  // namespace sidecache::redis

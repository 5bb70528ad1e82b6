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

std::string probe(const config::RedisConfig& r) {
  timeval tv{static_cast<long>(r.connect_timeout.count() / 1000), static_cast<long>((r.connect_timeout.count() % 1000) * 1000)};
  redisContext* rc = r.is_unix ? redisConnectUnixWithTimeout(r.path.c_str(), tv) : redisConnectWithTimeout(r.host.c_str(), r.port, tv);
  if (!rc) return "out of memory";
  if (rc->err) {
    std::string why = rc->errstr;
    redisFree(rc);
    return why;
  }
  redisSetTimeout(rc, tv);
  auto run = [rc](const std::vector<std::string>& argv) -> std::string {
    std::vector<const char*> args;
    std::vector<std::size_t> lens;
    for (const auto& a : argv) args.push_back(a.data()), lens.push_back(a.size());
    auto* reply = static_cast<redisReply*>(redisCommandArgv(rc, static_cast<int>(args.size()), args.data(), lens.data()));
    if (!reply) return std::string("no answer: ") + rc->errstr;
    std::string err = reply->type == REDIS_REPLY_ERROR ? std::string(reply->str, reply->len) : "";
    freeReplyObject(reply);
    return err;
  };
  std::string why;
  auto commands = setup_commands(r);
  commands.push_back({"PING"});
  for (const auto& c : commands) {
    why = run(c);
    if (!why.empty()) break;
  }
  redisFree(rc);
  return why;
}

}  // namespace sidecache::redis

#include "sidecache/redis/sentinel.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include "sidecache/redis/ask_each.hpp"
#include "sidecache/redis/subscriber.hpp"

namespace sidecache::redis {

config::RedisConfig sentinel_config(const config::RedisConfig& cfg, const config::HostPort& s) {
  config::RedisConfig c = cfg.at(s.host, s.port);
  c.username.clear();  // the master's credentials, not the sentinels'
  c.password.clear();
  return c;
}

void ask_master(const net::any_io_executor& ex, const config::RedisConfig& cfg,
                std::function<void(config::HostPort, std::string)> done) {
  std::vector<config::RedisConfig> sentinels;
  for (const auto& s : cfg.sentinels) sentinels.push_back(sentinel_config(cfg, s));
  auto master = std::make_shared<config::HostPort>();
  std::string name = cfg.master_name;
  ask_each(
      ex, std::move(sentinels), {"SENTINEL", "get-master-addr-by-name", name},
      [master, name](const redisReply* reply) -> std::string {
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 && reply->element[0]->type == REDIS_REPLY_STRING &&
            reply->element[1]->type == REDIS_REPLY_STRING) {
          *master = config::HostPort{std::string(reply->element[0]->str, reply->element[0]->len),
                                     static_cast<std::uint16_t>(std::atoi(reply->element[1]->str))};
          if (master->port != 0) return {};
        }
        if (reply->type == REDIS_REPLY_ERROR) return std::string(reply->str, reply->len);
        return "it does not know master '" + name + "' (set redis.master_name to the name in `sentinel monitor`)";
      },
      [master, name, done = std::move(done)](std::string why) {
        if (!why.empty()) return done({}, "no sentinel answered for master '" + name + "' (" + why + ")");
        done(*master, "");
      });
}

std::string switch_of(std::string_view message, const std::string& master_name) {
  std::vector<std::string_view> w;
  std::size_t start = 0;
  while (start < message.size()) {
    std::size_t sp = message.find(' ', start);
    w.push_back(message.substr(start, sp == std::string_view::npos ? std::string_view::npos : sp - start));
    if (sp == std::string_view::npos) break;
    start = sp + 1;
  }
  if (w.size() != 5 || w[0] != master_name) return {};
  return std::string(w[1]) + ":" + std::string(w[2]) + " -> " + std::string(w[3]) + ":" + std::string(w[4]);
}

SentinelWatch::SentinelWatch(net::any_io_executor ex, const config::RedisConfig& cfg,
                             std::function<void(const std::string&)> on_switch) {
  std::vector<config::RedisConfig> targets;
  for (const auto& s : cfg.sentinels) targets.push_back(sentinel_config(cfg, s));
  std::string name = cfg.master_name;
  sub_ = std::make_shared<Subscriber>(
      std::move(ex), targets.front(), "+switch-master",
      [name, on_switch = std::move(on_switch)](std::string_view msg) {
        std::string what = switch_of(msg, name);
        if (!what.empty()) on_switch(what);
      },
      nullptr);
  sub_->rotate_through(std::move(targets));
}

SentinelWatch::~SentinelWatch() { stop(); }
void SentinelWatch::start() { sub_->start(); }
void SentinelWatch::stop() { sub_->stop(); }

}  // namespace sidecache::redis

#include "sidecache/redis/sentinel.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <boost/asio/steady_timer.hpp>

#include "sidecache/redis/resp_stream.hpp"
#include "sidecache/redis/subscriber.hpp"

namespace sidecache::redis {

config::RedisConfig sentinel_config(const config::RedisConfig& cfg, const config::HostPort& s) {
  config::RedisConfig c = cfg;
  c.mode = config::RedisMode::standalone;
  c.host = s.host;
  c.port = s.port;
  c.is_unix = false;
  c.username.clear();
  c.password.clear();
  c.db = 0;
  c.url = (cfg.tls() ? "rediss://" : "redis://") + s.host + ":" + std::to_string(s.port);
  return c;
}

namespace {

// One question to the sentinels, one after another until one answers.
class MasterQuery final : public std::enable_shared_from_this<MasterQuery>, private RespStream::Events {
 public:
  MasterQuery(net::any_io_executor ex, config::RedisConfig cfg, std::function<void(config::HostPort, std::string)> done)
      : ex_(std::move(ex)), cfg_(std::move(cfg)), done_(std::move(done)), timer_(ex_) {}

  void next() {
    if (i_ >= cfg_.sentinels.size()) return finish({}, "no sentinel answered for master '" + cfg_.master_name + "' (" + why_ + ")");
    const config::HostPort& s = cfg_.sentinels[i_++];
    stream_ = std::make_shared<RespStream>(ex_, sentinel_config(cfg_, s), nullptr, nullptr, static_cast<Events*>(this));
    self_ = shared_from_this();  // alive while a stream reports to it
    timer_.expires_after(cfg_.connect_timeout + cfg_.timeout);
    timer_.async_wait([w = weak_from_this(), st = stream_](const boost::system::error_code& ec) {
      auto q = w.lock();
      if (ec || !q || q->stream_ != st) return;
      q->failed("no answer in time");
    });
    stream_->open();
  }

 private:
  void on_open() override {
    std::string_view ask[] = {"SENTINEL", "get-master-addr-by-name", cfg_.master_name};
    stream_->send(ask);
  }
  void on_reply(void* r) override {
    auto* reply = static_cast<redisReply*>(r);
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 && reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING) {
      config::HostPort m{std::string(reply->element[0]->str, reply->element[0]->len),
                         static_cast<std::uint16_t>(std::atoi(reply->element[1]->str))};
      if (m.port != 0) return finish(m, "");
    }
    if (reply->type == REDIS_REPLY_ERROR) return failed(std::string(reply->str, reply->len));
    failed("it does not know master '" + cfg_.master_name + "' (set redis.master_name to the name in `sentinel monitor`)");
  }
  void on_close(const std::string& why) override { failed(why); }

  void failed(const std::string& why) {
    const config::HostPort& s = cfg_.sentinels[i_ - 1];
    why_ += (why_.empty() ? "" : "; ") + s.host + ":" + std::to_string(s.port) + ": " + why;
    end_stream();
    next();
  }
  void finish(const config::HostPort& m, const std::string& why) {
    end_stream();
    auto done = std::move(done_);
    auto keep = std::move(self_);
    if (done) done(m, why);
  }
  void end_stream() {
    timer_.cancel();
    if (stream_) stream_->close();
    stream_.reset();
  }

  net::any_io_executor ex_;
  config::RedisConfig cfg_;
  std::function<void(config::HostPort, std::string)> done_;
  net::steady_timer timer_;
  std::shared_ptr<RespStream> stream_;
  std::shared_ptr<MasterQuery> self_;
  std::size_t i_ = 0;
  std::string why_;
};

}  // namespace

void ask_master(const net::any_io_executor& ex, const config::RedisConfig& cfg,
                std::function<void(config::HostPort, std::string)> done) {
  std::make_shared<MasterQuery>(ex, cfg, std::move(done))->next();
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

#include "sidecache/redis/subscriber.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <cstring>

#include "sidecache/redis/probe.hpp"

namespace sidecache::redis {

namespace {
constexpr std::chrono::milliseconds kMaxBackoff{2000};
}

Subscriber::Subscriber(net::any_io_executor ex, config::RedisConfig cfg, std::string channel, MessageFn on_message,
                       StateFn on_state)
    : ex_(std::move(ex)), cfg_(std::move(cfg)), channel_(std::move(channel)), on_message_(std::move(on_message)),
      on_state_(std::move(on_state)), timer_(ex_) {}

Subscriber::~Subscriber() { stop(); }

void Subscriber::start() {
  stopped_ = false;
  connect();
}

void Subscriber::stop() {
  stopped_ = true;
  timer_.cancel();
  if (stream_) {
    stream_->close();
    stream_.reset();
  }
  subscribed_ = false;
}

void Subscriber::connect() {
  if (stopped_ || stream_) return;
  stream_ = std::make_shared<RespStream>(ex_, cfg_, nullptr, nullptr, static_cast<Events*>(this));
  stream_->open();
  // A connection that neither connects nor subscribes in time is dropped.
  timer_.expires_after(cfg_.connect_timeout + cfg_.timeout);
  timer_.async_wait([w = weak_from_this(), st = std::weak_ptr<RespStream>(stream_)](const boost::system::error_code& ec) {
    auto s = w.lock();
    if (ec || !s || s->stream_ != st.lock() || s->subscribed_) return;
    s->drop("subscribe timed out");
  });
}

void Subscriber::schedule_reconnect() {
  if (stopped_) return;
  timer_.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  timer_.async_wait([w = weak_from_this()](const boost::system::error_code& ec) {
    auto s = w.lock();
    if (ec || !s || s->stopped_ || s->stream_) return;
    s->connect();
  });
}

void Subscriber::on_open() {
  for (const auto& argv : setup_commands(cfg_)) {
    std::vector<std::string_view> args(argv.begin(), argv.end());
    stream_->send(args);
  }
  std::string_view sub[] = {"SUBSCRIBE", channel_};
  stream_->send(sub);
}

void Subscriber::drop(const std::string& why) {
  if (!stream_) return;
  stream_->close();
  on_close(why);
}

void Subscriber::rotate_through(std::vector<config::RedisConfig> targets, std::string name) {
  targets_ = std::move(targets);
  name_ = std::move(name);
  if (!targets_.empty()) cfg_ = targets_[target_ % targets_.size()];
}

void Subscriber::on_close(const std::string& why) {
  stream_.reset();
  if (!targets_.empty()) cfg_ = targets_[++target_ % targets_.size()];
  timer_.cancel();
  bool was = subscribed_;
  subscribed_ = false;
  if (stopped_) return;
  if (!logged_down_) spdlog::warn("redis[{}]: subscription to {} lost: {}", name_, channel_, why);
  logged_down_ = true;
  if (was && on_state_) on_state_(false);
  net::post(ex_, [w = weak_from_this()] {
    if (auto s = w.lock()) s->schedule_reconnect();
  });
}

void Subscriber::on_reply(void* r) {
  auto* reply = static_cast<redisReply*>(r);
  if (reply->type == REDIS_REPLY_ERROR) {
    // AUTH, SELECT or SUBSCRIBE refused.
    std::string err(reply->str, reply->len);
    spdlog::error("redis[{}]: subscribing to {} failed: {}", name_, channel_, err);
    drop(err);
    return;
  }
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 || reply->element[0]->type != REDIS_REPLY_STRING) return;
  std::string_view kind(reply->element[0]->str, reply->element[0]->len);
  if (kind == "subscribe") {
    timer_.cancel();
    backoff_ = std::chrono::milliseconds(50);
    subscribed_ = true;
    spdlog::info("redis[{}]: subscribed to {}{} (on {})", name_, channel_, logged_down_ ? " again" : "", stream_->peer());
    logged_down_ = false;
    if (on_state_) on_state_(true);
  } else if (kind == "message" && reply->element[2]->type == REDIS_REPLY_STRING) {
    if (on_message_) on_message_(std::string_view(reply->element[2]->str, reply->element[2]->len));
  }
}

}  // namespace sidecache::redis

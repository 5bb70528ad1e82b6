#include "sidecache/redis/subscriber.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <cstring>

#include "asio_adapter.hpp"

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
  if (ac_) {
    redisAsyncContext* ac = ac_;
    ac_ = nullptr;
    ac->data = nullptr;  // the callbacks hiredis runs while freeing see nobody
    redisAsyncFree(ac);
  }
  subscribed_ = false;
}

void Subscriber::connect() {
  if (stopped_ || ac_) return;
  std::string why;
  redisAsyncContext* ac = open_async(cfg_, ex_, adapter_, why);
  if (!ac) {
    if (!logged_down_) spdlog::warn("redis[{}]: cannot connect: {}", name_, why);
    logged_down_ = true;
    schedule_reconnect();
    return;
  }
  if (!cfg_.is_unix) redisEnableKeepAlive(&ac->c);
  ac->data = this;
  ac_ = ac;
  redisAsyncSetConnectCallback(ac, &Subscriber::on_connect);
  redisAsyncSetDisconnectCallback(ac, &Subscriber::on_disconnect);
  queue_setup(ac, cfg_, name_);
  redisAsyncCommand(ac, &Subscriber::on_reply, nullptr, "SUBSCRIBE %b", channel_.data(), channel_.size());
  // A connection that neither connects nor subscribes in time is dropped.
  timer_.expires_after(cfg_.connect_timeout);
  timer_.async_wait([w = weak_from_this(), ac](const boost::system::error_code& ec) {
    auto s = w.lock();
    if (ec || !s || s->ac_ != ac || s->subscribed_) return;
    s->ac_ = nullptr;
    ac->data = nullptr;
    redisAsyncFree(ac);
    s->lost("subscribe timed out");
  });
}

void Subscriber::schedule_reconnect() {
  if (stopped_) return;
  timer_.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  timer_.async_wait([w = weak_from_this()](const boost::system::error_code& ec) {
    auto s = w.lock();
    if (ec || !s || s->stopped_ || s->ac_) return;
    s->connect();
  });
}

void Subscriber::lost(const char* why) {
  bool was = subscribed_;
  subscribed_ = false;
  if (!logged_down_) spdlog::warn("redis[l1]: subscription to {} lost: {}", channel_, why);
  logged_down_ = true;
  if (was && on_state_) on_state_(false);
  net::post(ex_, [w = weak_from_this()] {
    if (auto s = w.lock()) s->schedule_reconnect();
  });
}

void Subscriber::on_connect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<Subscriber*>(ac->data);
  if (!self || status == REDIS_OK) return;  // success shows as the subscribe reply
  self->ac_ = nullptr;  // hiredis frees the context after this callback
  self->timer_.cancel();
  self->lost(ac->errstr);
}

void Subscriber::on_disconnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<Subscriber*>(ac->data);
  if (!self) return;
  self->ac_ = nullptr;
  if (self->stopped_) return;
  self->lost(status == REDIS_OK ? "disconnected" : ac->errstr);
}

void Subscriber::on_reply(redisAsyncContext* ac, void* r, void*) {
  auto* self = static_cast<Subscriber*>(ac->data);
  auto* reply = static_cast<redisReply*>(r);
  if (!self || !reply) return;
  if (reply->type == REDIS_REPLY_ERROR) {
    spdlog::error("redis[l1]: SUBSCRIBE {} failed: {}", self->channel_, std::string(reply->str, reply->len));
    redisAsyncDisconnect(ac);
    return;
  }
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 || reply->element[0]->type != REDIS_REPLY_STRING) return;
  std::string_view kind(reply->element[0]->str, reply->element[0]->len);
  if (kind == "subscribe") {
    self->timer_.cancel();
    self->backoff_ = std::chrono::milliseconds(50);
    self->subscribed_ = true;
    spdlog::info("redis[l1]: subscribed to {}{}", self->channel_, self->logged_down_ ? " again" : "");
    self->logged_down_ = false;
    if (self->on_state_) self->on_state_(true);
  } else if (kind == "message" && reply->element[2]->type == REDIS_REPLY_STRING) {
    if (self->on_message_) self->on_message_(std::string_view(reply->element[2]->str, reply->element[2]->len));
  }
}

}  // namespace sidecache::redis

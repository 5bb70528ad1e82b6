#include "sidecache/redis/ask_each.hpp"

#include <hiredis/hiredis.h>

#include <boost/asio/steady_timer.hpp>

#include <memory>

#include "sidecache/redis/resp_stream.hpp"

namespace sidecache::redis {

namespace {

class Query final : public std::enable_shared_from_this<Query>, private RespStream::Events {
 public:
  Query(net::any_io_executor ex, std::vector<config::RedisConfig> servers, std::vector<std::string> argv,
        std::function<std::string(const redisReply*)> accept, std::function<void(std::string)> done)
      : ex_(std::move(ex)), servers_(std::move(servers)), argv_(std::move(argv)), accept_(std::move(accept)),
        done_(std::move(done)), timer_(ex_) {}

  void next() {
    if (i_ >= servers_.size()) return finish(why_.empty() ? "no server to ask" : why_);
    const config::RedisConfig& s = servers_[i_++];
    stream_ = std::make_shared<RespStream>(ex_, s, nullptr, nullptr, static_cast<Events*>(this));
    self_ = shared_from_this();  // alive while a stream reports to it
    timer_.expires_after(s.connect_timeout + s.timeout);
    timer_.async_wait([w = weak_from_this(), st = stream_](const boost::system::error_code& ec) {
      auto q = w.lock();
      if (ec || !q || q->stream_ != st) return;
      q->failed("no answer in time");
    });
    stream_->open();
  }

 private:
  void on_open() override {
    std::vector<std::string_view> args(argv_.begin(), argv_.end());
    stream_->send(args);
  }
  void on_reply(void* r) override {
    std::string why = accept_(static_cast<redisReply*>(r));
    if (why.empty()) return finish("");
    failed(why);
  }
  void on_close(const std::string& why) override { failed(why); }

  void failed(const std::string& why) {
    why_ += (why_.empty() ? "" : "; ") + stream_->peer() + ": " + why;
    end_stream();
    next();
  }
  void finish(const std::string& why) {
    end_stream();
    auto done = std::move(done_);
    auto keep = std::move(self_);
    if (done) done(why);
  }
  void end_stream() {
    timer_.cancel();
    if (stream_) stream_->close();
    stream_.reset();
  }

  net::any_io_executor ex_;
  std::vector<config::RedisConfig> servers_;
  std::vector<std::string> argv_;
  std::function<std::string(const redisReply*)> accept_;
  std::function<void(std::string)> done_;
  net::steady_timer timer_;
  std::shared_ptr<RespStream> stream_;
  std::shared_ptr<Query> self_;
  std::size_t i_ = 0;
  std::string why_;
};

}  // namespace

void ask_each(const net::any_io_executor& ex, std::vector<config::RedisConfig> servers, std::vector<std::string> argv,
              std::function<std::string(const redisReply*)> accept, std::function<void(std::string)> done) {
  std::make_shared<Query>(ex, std::move(servers), std::move(argv), std::move(accept), std::move(done))->next();
}

}  // namespace sidecache::redis

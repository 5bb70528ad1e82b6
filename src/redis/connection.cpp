#include "sidecache/redis/connection.hpp"

#include "sidecache/config/text.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <boost/uuid/detail/sha1.hpp>

#include "reply_builder.hpp"
#include "sidecache/redis/probe.hpp"

namespace sidecache::redis {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kMaxBackoff{2000};

const char* to_string(State s) {
  switch (s) {
    case State::disconnected: return "down";
    case State::connecting: return "connecting";
    case State::connected: return "up";
  }
  return "?";
}

Script::Script(std::string b) : body(std::move(b)) {
  boost::uuids::detail::sha1 h;
  h.process_bytes(body.data(), body.size());
  boost::uuids::detail::sha1::digest_type d;
  h.get_digest(d);
  for (unsigned word : d) config::append_hex(sha1, word, 8);
}


std::size_t Connection::reply_split() const { return sent_.empty() ? 0 : sent_.front().split; }

void Connection::complete(Pending& p, Reply r) {
  if (!p.handler) return;
  // Completion is posted, never run inside the stream's reply handler: the
  // coroutine may issue the next command or drop the connection.
  net::post(p.ex, [h = std::move(p.handler), r = std::move(r)]() mutable { std::move(h)(std::move(r)); });
  p.handler = nullptr;
}

Connection::Connection(net::any_io_executor ex, config::RedisConfig cfg, std::string name)
    : ex_(std::move(ex)), cfg_(std::move(cfg)), name_(std::move(name)), connect_timer_(ex_), deadline_timer_(ex_),
      hang_timer_(ex_) {}

Connection::~Connection() { stop(); }

void Connection::start() {
  stopped_ = false;
  connect();
}

void Connection::wake_connect_waiters() {
  for (auto& w : connect_waiters_)
    if (auto t = w.lock()) t->cancel();
  connect_waiters_.clear();
}

void Connection::fail_sent() {
  // Every command sent and not answered fails as "connection lost", oldest
  // first, as its reply would have come.
  std::deque<Pending> lost;
  lost.swap(sent_);
  for (Pending& p : lost) {
    give_verdict(p, false);
    Reply r;
    r.status = Reply::Status::unavailable;
    r.error = "connection lost";
    complete(p, std::move(r));
  }
}

void Connection::stop() {
  stopped_ = true;
  ++writes_;
  connect_timer_.cancel();
  deadline_timer_.cancel();
  hang_timer_.cancel();
  wake_connect_waiters();
  if (stream_) {
    stream_->close();
    stream_.reset();
  }
  fail_sent();
  state_ = State::disconnected;
}

void Connection::connect() {
  if (stopped_ || stream_) return;
  stream_ = std::make_shared<RespStream>(ex_, cfg_, &kReplyFunctions, this, static_cast<Events*>(this));
  ++writes_;  // a new connection: nothing queued before is waiting to be sent
  stream_->count_writes(&writes_);
  stream_->note_reads(&last_read_);
  hung_ = false;
  state_ = State::connecting;
  stream_->open();
}

void Connection::schedule_reconnect() {
  state_ = State::disconnected;
  if (stopped_) return;
  connect_timer_.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  connect_timer_.async_wait([self = weak_from_this()](const boost::system::error_code& ec) {
    auto c = self.lock();
    if (ec || !c || c->stopped_ || c->stream_) return;
    if (c->may_reconnect_ && !c->may_reconnect_()) {
      // The breaker is open: stay away; a half-open probe will connect.
      c->state_ = State::disconnected;
      return;
    }
    c->connect();
  });
}

void Connection::on_open() {
  // AUTH and SELECT go first: every command queued from now on runs after them.
  for (const auto& argv : setup_commands(cfg_)) {
    std::vector<std::string_view> args(argv.begin(), argv.end());
    send_unawaited(args, true, cfg_.connect_timeout);
  }
  static std::atomic<std::uint64_t> sessions{0};
  session_ = ++sessions;
  state_ = State::connected;
  {
    std::lock_guard lock(address_mu_);
    address_ = stream_->peer();
  }
  wake_connect_waiters();
  backoff_ = std::chrono::milliseconds(50);
  spdlog::info("redis[{}]: connected to {}{}{}", name_, stream_->peer(), cfg_.tls() ? " over TLS" : "",
               logged_down_ ? " again" : "");
  logged_down_ = false;
}

void Connection::send_unawaited(std::span<const std::string_view> argv, bool setup, std::chrono::milliseconds limit) {
  stream_->send(argv);
  Pending p;
  p.setup = setup;
  p.discard = !setup;
  p.sent_at = Clock::now();
  p.deadline = p.sent_at + limit;
  sent_.push_back(std::move(p));
}

void Connection::on_close(const std::string& why) {
  bool was_connecting = state_ == State::connecting;
  std::string where = stream_ ? stream_->peer() : std::string();
  stream_.reset();
  ++writes_;
  session_ = 0;
  state_ = State::disconnected;
  fail_sent();
  wake_connect_waiters();
  if (stopped_) return;
  if (!logged_down_)
    spdlog::warn("redis[{}]: {} {}: {}", name_, was_connecting ? "cannot connect to" : "disconnected from", where, why);
  logged_down_ = true;
  schedule_reconnect();
}

void Connection::drop(const std::string& why) {
  if (!stream_) return;
  stream_->close();
  on_close(why);
}

void Connection::on_reply(void* r) {
  // Redis answers every command in the order it was sent: the oldest
  // unanswered one is this one.
  Reply& reply = static_cast<Root*>(r)->reply;  // built by create_string and friends
  if (sent_.empty()) {
    // Nothing was asked: a server's error on its own ("max clients").
    drop("the server said, unasked: " + (reply.error.empty() ? reply.value : reply.error));
    return;
  }
  hung_ = false;  // Redis answers
  Pending& p = sent_.front();
  if (p.discard) {
    sent_.pop_front();
    return;
  }
  if (p.setup) {
    bool refused = reply.status == Reply::Status::error;
    std::string err = reply.error;
    sent_.pop_front();
    if (refused) {
      spdlog::error("redis[{}]: connection setup (AUTH or SELECT) failed: {}", name_, err);
      drop("setup refused: " + err);
    }
    return;
  }
  give_verdict(p, true);
  // A server that became a replica (a failover) refuses writes: the master
  // is elsewhere now, and a new connection asks where.
  bool demoted = reply.status == Reply::Status::error && reply.error.rfind("READONLY", 0) == 0;
  complete(p, std::move(reply));
  sent_.pop_front();
  if (demoted) drop("it answered READONLY: it is a replica now");
}

void Connection::reconnect(const std::string& why) {
  if (stream_) drop(why);
}

std::string Connection::address() const {
  std::lock_guard lock(address_mu_);
  return address_;
}

void Connection::arm(net::steady_timer& timer, bool& armed, Clock::time_point at, void (Connection::*fire)()) {
  armed = true;
  timer.expires_at(at);
  timer.async_wait([w = weak_from_this(), &armed, fire](const boost::system::error_code& ec) {
    auto c = w.lock();
    if (!c) return;  // (armed lives in *c: not touched once it is gone)
    armed = false;
    if (!ec && !c->stopped_) (c.get()->*fire)();
  });
}

void Connection::give_verdict(Pending& p, bool answered) {
  if (p.handler || !p.late) return;  // answered in time (no verdict owed), or given already
  LateVerdict late = std::move(p.late);
  p.late = nullptr;
  late(answered);
}

std::chrono::steady_clock::duration Connection::hang_after() const {
  return std::max<std::chrono::steady_clock::duration>(4 * cfg_.timeout, std::chrono::milliseconds(200));
}

void Connection::arm_hang_check() {
  if (hang_armed_) return;
  for (const Pending& p : sent_) {
    if (p.handler || !p.late) continue;
    // Due when nothing has been read for hang_after since the oldest
    // unanswered command was sent.
    auto since = std::max(last_read_, sent_.front().sent_at);
    hang_due_ = since + hang_after();
    arm(hang_timer_, hang_armed_, hang_due_, &Connection::on_hang_check);
    return;
  }
}

void Connection::on_hang_check() {
  if (sent_.empty()) return;
  auto now = Clock::now();
  if (now - hang_due_ > hang_after() / 4) {
    // This check ran late: the loop was busy (a large value being formatted
    // or copied on this worker), and bytes may be waiting in the socket that
    // it could not read. The silence is not Redis': look again from now.
    last_read_ = now;
    arm_hang_check();
    return;
  }
  auto since = std::max(last_read_, sent_.front().sent_at);
  if (now - since >= hang_after()) {
    // Hung (stopped, a black hole, a long script): every timeout counts.
    hung_ = true;
    for (Pending& p : sent_) give_verdict(p, false);
    return;
  }
  arm_hang_check();  // bytes are moving: a large reply; look again later
}

void Connection::arm_deadline() {
  if (deadline_armed_) return;
  for (const Pending& p : sent_) {
    if (!p.handler) continue;  // timed out already, its reply still to come
    arm(deadline_timer_, deadline_armed_, p.deadline, &Connection::on_deadline);
    return;
  }
}

void Connection::on_deadline() {
  auto now = Clock::now();
  for (Pending& p : sent_) {
    if (!p.handler) continue;
    if (p.deadline > now) break;  // the rest were sent later
    Reply r;
    r.status = Reply::Status::timeout;
    r.error = "timed out";
    // Its reply, if it ever comes, finds the entry completed.
    complete(p, std::move(r));
    if (hung_) give_verdict(p, false);
  }
  arm_deadline();
  arm_hang_check();
}

net::awaitable<bool> Connection::ready(std::chrono::milliseconds limit) {
  if (state_ == State::connected && stream_) co_return true;
  if (stopped_) co_return false;
  if (state_ == State::disconnected && !stream_) {
    // A caller connects at once rather than wait for the backoff: the
    // circuit breaker in front decides how often callers come.
    connect_timer_.cancel();
    connect();
  }
  if (state_ != State::connecting) co_return state_ == State::connected;
  // Wait for the connection, as long as a command would wait for a reply.
  auto t = std::make_shared<net::steady_timer>(ex_, limit);
  connect_waiters_.push_back(t);
  co_await t->async_wait(net::as_tuple(net::use_awaitable));
  co_return state_ == State::connected && stream_;
}

net::awaitable<Reply> Connection::command(std::span<const std::string_view> argv, std::size_t split, LateVerdict late,
                                          std::chrono::milliseconds timeout, bool asking) {
  if (state_ != State::connected || !stream_) {
    // (The result is named: gcc 12 miscompiles co_await inside an if.)
    bool up = co_await ready(cfg_.timeout);
    if (!up) {
      Reply r;
      r.status = Reply::Status::unavailable;
      r.error = "not connected";
      co_return r;
    }
  }
  co_return co_await net::async_initiate<decltype(net::use_awaitable), void(Reply)>(
      [&](auto handler) {
        net::any_io_executor handler_ex = net::get_associated_executor(handler, ex_);
        if (asking) {
          std::string_view ask[] = {"ASKING"};
          send_unawaited(ask, false, cfg_.timeout);
        }
        stream_->send(argv);
        auto now = Clock::now();
        auto limit = timeout.count() > 0 ? timeout : cfg_.timeout;
        sent_.push_back(Pending{std::move(handler), std::move(handler_ex), split, now + limit, now, std::move(late)});
        arm_deadline();
      },
      net::use_awaitable);
}

net::awaitable<Reply> Connection::mget(const std::vector<std::string>& keys, std::size_t split, LateVerdict late,
                                       bool asking) {
  std::vector<std::string_view> argv;
  argv.reserve(keys.size() + 1);
  argv.emplace_back("MGET");
  for (const auto& k : keys) argv.emplace_back(k);
  co_return co_await command(argv, split, std::move(late), std::chrono::milliseconds(0), asking);
}

net::awaitable<Reply> Connection::eval(const Script& script, const std::vector<std::string>& keys,
                                       const std::vector<std::string_view>& args, std::size_t split,
                                       LateVerdict late, bool asking) {
  std::string nkeys = std::to_string(keys.size());
  std::vector<std::string_view> argv;
  argv.reserve(keys.size() + args.size() + 3);
  argv.emplace_back("EVALSHA");
  argv.emplace_back(script.sha1);
  argv.emplace_back(nkeys);
  for (const auto& k : keys) argv.emplace_back(k);
  for (const auto& a : args) argv.emplace_back(a);
  // (An EVALSHA answered NOSCRIPT was answered: the verdict goes with the EVAL.)
  LateVerdict for_eval = late;
  Reply r = co_await command(argv, split, std::move(late), std::chrono::milliseconds(0), asking);
  if (r.status == Reply::Status::error && r.error.rfind("NOSCRIPT", 0) == 0) {
    // First use on this server (or after a restart / SCRIPT FLUSH): EVAL
    // sends the body once and Redis caches it for the next EVALSHA.
    argv[0] = "EVAL";
    argv[1] = script.body;
    r = co_await command(argv, split, std::move(for_eval), std::chrono::milliseconds(0), asking);
  }
  co_return r;
}

net::awaitable<Reply> Connection::set_px(std::string_view key, std::string_view value, std::uint64_t ttl_ms) {
  std::string ttl = std::to_string(std::max<std::uint64_t>(ttl_ms, 1));
  std::vector<std::string_view> argv{std::string_view("SET"), key, value, std::string_view("PX"), std::string_view(ttl)};
  co_return co_await command(argv);
}

}  // namespace sidecache::redis

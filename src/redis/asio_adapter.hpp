#pragma once
// hiredis <-> Asio adapter, in the shape of hiredis' own adapters (libev.h,
// libuv.h): five hooks and an attach function.
//
// - The stream_descriptor never owns the fd: hiredis closes it, so cleanup()
//   release()s the descriptor (which also aborts pending waits).
// - One wait per direction at a time; a hook that asks for a wait already
//   armed does nothing (hooks are idempotent).
// - Everything runs on the connection's single-threaded io_context, so the
//   hooks and the wait handlers never race.
// - Handlers hold a shared_ptr to the adapter, and check ac_ after every call
//   into hiredis: a read can end in a disconnect that frees the context.
#include <hiredis/async.h>

#include <boost/asio/posix/stream_descriptor.hpp>

#include <hiredis/hiredis.h>
#include <hiredis/sds.h>
#include <spdlog/spdlog.h>

#include <cstdint>

#include <memory>
#include <string>

#include "sidecache/config/config.hpp"
#include "sidecache/redis/probe.hpp"

namespace sidecache::redis {

class Adapter : public std::enable_shared_from_this<Adapter> {
 public:
  Adapter(boost::asio::any_io_executor ex, redisAsyncContext* ac) : ac_(ac), sd_(ex) {}

  // Counted up before every write of buffered commands to the socket, so
  // that a command queued since the last count is known not to have reached
  // Redis yet (Connection::writes()). The counter outlives the adapter's
  // use: it is read only while the context is attached.
  void count_writes(std::uint64_t* counter) { writes_ = counter; }
  // Set to the time of every read from the socket: a reply that is slow
  // because it is large keeps it moving; a hung Redis does not.
  void note_reads(std::chrono::steady_clock::time_point* last_read) { last_read_ = last_read; }

  // Attaches to ac; returns false if it already has an event loop.
  static std::shared_ptr<Adapter> attach(boost::asio::any_io_executor ex, redisAsyncContext* ac) {
    if (ac->ev.data != nullptr) return nullptr;
    auto a = std::make_shared<Adapter>(ex, ac);
    boost::system::error_code ec;
    a->sd_.assign(ac->c.fd, ec);
    if (ec) return nullptr;
    ac->ev.addRead = &Adapter::add_read;
    ac->ev.delRead = &Adapter::del_read;
    ac->ev.addWrite = &Adapter::add_write;
    ac->ev.delWrite = &Adapter::del_write;
    ac->ev.cleanup = &Adapter::cleanup;
    ac->ev.data = a.get();
    a->self_ = a;  // hiredis holds a reference until cleanup
    return a;
  }

 private:
  static Adapter* self(void* p) { return static_cast<Adapter*>(p); }
  static void add_read(void* p) { self(p)->want_read_ = true; self(p)->arm_read(); }
  static void del_read(void* p) { self(p)->want_read_ = false; }
  static void add_write(void* p) { self(p)->want_write_ = true; self(p)->arm_write(); }
  static void del_write(void* p) { self(p)->want_write_ = false; }
  static void cleanup(void* p) {
    Adapter* a = self(p);
    a->want_read_ = a->want_write_ = false;
    a->ac_->ev.data = nullptr;
    a->ac_ = nullptr;
    a->sd_.release();  // hiredis closes the fd itself
    a->self_.reset();  // may destroy *a; nothing after this line
  }

  void arm_read() {
    if (reading_ || !ac_) return;
    reading_ = true;
    sd_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                   [a = shared_from_this()](const boost::system::error_code& ec) {
                     a->reading_ = false;
                     if (ec || !a->ac_ || !a->want_read_) return;
                     if (a->last_read_) *a->last_read_ = std::chrono::steady_clock::now();
                     redisAsyncHandleRead(a->ac_);
                     if (a->ac_ && a->want_read_) a->arm_read();
                   });
  }

  void arm_write() {
    if (writing_ || !ac_) return;
    writing_ = true;
    sd_.async_wait(boost::asio::posix::stream_descriptor::wait_write,
                   [a = shared_from_this()](const boost::system::error_code& ec) {
                     a->writing_ = false;
                     if (ec || !a->ac_ || !a->want_write_) return;
                     if (a->writes_ && sdslen(a->ac_->c.obuf) > 0) ++*a->writes_;
                     redisAsyncHandleWrite(a->ac_);
                     if (a->ac_ && a->want_write_) a->arm_write();
                   });
  }

  redisAsyncContext* ac_;
  boost::asio::posix::stream_descriptor sd_;
  std::shared_ptr<Adapter> self_;
  bool want_read_ = false, want_write_ = false;
  bool reading_ = false, writing_ = false;
  std::uint64_t* writes_ = nullptr;
  std::chrono::steady_clock::time_point* last_read_ = nullptr;
};

// Starts connecting to the configured Redis (TCP or unix socket) and
// attaches it to `ex`. On failure returns nullptr and says why; nothing is
// left to free. Shared by the command connections and the L1 subscriber.
inline redisAsyncContext* open_async(const config::RedisConfig& cfg, const boost::asio::any_io_executor& ex,
                                     std::shared_ptr<Adapter>& adapter, std::string& why) {
  redisAsyncContext* ac = cfg.is_unix ? redisAsyncConnectUnix(cfg.path.c_str())
                                      : redisAsyncConnect(cfg.host.c_str(), cfg.port);
  if (!ac || ac->err) {
    why = ac ? ac->errstr : "out of memory";
    if (ac) redisAsyncFree(ac);
    return nullptr;
  }
  adapter = Adapter::attach(ex, ac);
  if (!adapter) {
    why = "cannot attach to the event loop";
    redisAsyncFree(ac);
    return nullptr;
  }
  return ac;
}

// Queues AUTH (when the URL has a password) and SELECT (when db != 0), so
// every later command on `ac` runs after them. A failure is logged under
// `name` (which must outlive `ac`) and drops the connection.
inline void queue_setup(redisAsyncContext* ac, const config::RedisConfig& cfg, const std::string& name) {
  auto setup = [](redisAsyncContext* c, void* r, void* who) {
    auto* reply = static_cast<redisReply*>(r);
    if (reply && reply->type == REDIS_REPLY_ERROR) {
      spdlog::error("redis[{}]: connection setup (AUTH or SELECT) failed: {}", *static_cast<const std::string*>(who),
                    std::string(reply->str, reply->len));
      redisAsyncDisconnect(c);
    }
  };
  void* who = const_cast<std::string*>(&name);
  for (const auto& argv : setup_commands(cfg)) {
    std::vector<const char*> args;
    std::vector<std::size_t> lens;
    for (const auto& arg : argv) args.push_back(arg.data()), lens.push_back(arg.size());
    redisAsyncCommandArgv(ac, setup, who, static_cast<int>(args.size()), args.data(), lens.data());
  }
}

}  // namespace sidecache::redis

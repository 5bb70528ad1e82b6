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

#include <memory>

namespace sidecache::redis {

class Adapter : public std::enable_shared_from_this<Adapter> {
 public:
  Adapter(boost::asio::any_io_executor ex, redisAsyncContext* ac) : ac_(ac), sd_(ex) {}

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
                     redisAsyncHandleWrite(a->ac_);
                     if (a->ac_ && a->want_write_) a->arm_write();
                   });
  }

  redisAsyncContext* ac_;
  boost::asio::posix::stream_descriptor sd_;
  std::shared_ptr<Adapter> self_;
  bool want_read_ = false, want_write_ = false;
  bool reading_ = false, writing_ = false;
};

}  // namespace sidecache::redis

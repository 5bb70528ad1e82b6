#include "sidecache/pg/listener.hpp"

#include "sidecache/pg/listen_probe.hpp"
#include "sidecache/pg/pool.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <pqxx/pqxx>

namespace sidecache::pg {
namespace {

class Receiver : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& c, const std::string& channel, const Listener::OnPayload& fn)
      : pqxx::notification_receiver(c, channel), fn_(fn) {}
  void operator()(const std::string& payload, int) override { fn_(payload); }

 private:
  const Listener::OnPayload& fn_;
};

}  // namespace

const char* to_string(Listener::State s) {
  switch (s) {
    case Listener::State::connecting: return "connecting";
    case Listener::State::listening: return "up";
    case Listener::State::down: return "down";
    case Listener::State::not_delivering: return "not-delivering";
  }
  return "?";
}

Listener::Listener(const config::PostgresConfig& pg, std::string channel, OnPayload on_payload, OnListening on_listening)
    : conninfo_(conninfo_of(pg.listen_conninfo(), pg)), notifier_conninfo_(conninfo_of(pg)), channel_(std::move(channel)), on_payload_(std::move(on_payload)),
      on_listening_(std::move(on_listening)) {}

Listener::~Listener() { stop(); }

void Listener::start() {
  stop_ = false;
  thread_ = std::thread([this] { run(); });
}

void Listener::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void Listener::run() {
  bool first = true;
  auto backoff = std::chrono::milliseconds(100);
  while (!stop_) {
    try {
      std::unique_lock one_at_a_time(connect_mutex());  // see pool.hpp
      pqxx::connection conn(conninfo_);
      {
        pqxx::nontransaction tx(conn);
        tx.exec("SET application_name = 'sidecache-listener'");
      }
      one_at_a_time.unlock();
      Receiver receiver(conn, channel_, on_payload_);
      // LISTEN is issued lazily by libpqxx; make it happen now, so that
      // "listening" below is true.
      conn.get_notifs();
      {
        pqxx::nontransaction tx(conn);
        tx.exec("SELECT 1");
      }
      // Once per start: that a NOTIFY from another session arrives here. A
      // pooler in transaction mode takes LISTEN and delivers nothing.
      if (first) {
        std::string why;
        try {
          why = probe_notifications(conn, notifier_conninfo_, std::chrono::milliseconds(2000));
        } catch (const std::exception& e) {
          why = config::mask_secrets(e.what());
        }
        if (!why.empty()) {
          spdlog::error("postgres: the invalidation listener: {}", listen_advice(why));
          state_ = State::not_delivering;
        }
      }
      if (state_ != State::not_delivering) state_ = State::listening;
      if (first) spdlog::info("postgres: listening on channel {}", channel_);
      bool flushed = on_listening_(first);
      if (!first && flushed)
        spdlog::warn("postgres: the invalidation listener is back; notifications sent while it was away are lost, "
                     "so every entity with invalidate_on is invalidated now");
      else if (!first)
        spdlog::warn("postgres: the invalidation listener is back; notifications sent while it was away are lost, "
                     "and nothing was invalidated for them (invalidation.flush_on_listen is off)");
      first = false;
      backoff = std::chrono::milliseconds(100);
      while (!stop_) conn.await_notification(0, 200000);  // 200 ms, to notice stop()
      return;
    } catch (const std::exception& e) {
      if (stop_) return;
      if (state_.exchange(State::down) != State::down)
        spdlog::warn("postgres: the invalidation listener lost its connection: {}", config::mask_secrets(e.what()));
    }
    auto until = std::chrono::steady_clock::now() + backoff;
    while (!stop_ && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
  }
}

}  // namespace sidecache::pg

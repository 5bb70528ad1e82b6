#pragma once
// The LISTEN side of invalidate-on-write: one dedicated PostgreSQL
// connection on its own thread, reconnecting by itself. Every (re)connect is
// reported, because notifications sent while nobody listened are lost.
#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "sidecache/config/config.hpp"

namespace sidecache::pg {

class Listener {
 public:
  using OnPayload = std::function<void(const std::string& payload)>;
  // Called on the listener thread right after each successful LISTEN;
  // `first` is true for the first one since start(). Returns whether it
  // invalidates everything that relies on notifications (the log line says
  // so after a reconnect).
  using OnListening = std::function<bool(bool first)>;

  Listener(const config::PostgresConfig& pg, std::string channel, OnPayload on_payload, OnListening on_listening);
  ~Listener();

  void start();
  void stop();

  // not_delivering: LISTEN succeeded but a probe NOTIFY never arrived (a
  // pooler in transaction mode); logged once with what to set.
  enum class State { connecting, listening, down, not_delivering };
  State state() const { return state_.load(); }

 private:
  void run();

  std::string conninfo_;
  std::string notifier_conninfo_;  // the probe's NOTIFY comes through postgres.dsn, as the triggers' do
  std::string channel_;
  OnPayload on_payload_;
  OnListening on_listening_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<State> state_{State::connecting};
};

const char* to_string(Listener::State s);

}  // namespace sidecache::pg

#include "sidecache/pg/listen_probe.hpp"

#include <unistd.h>

#include <atomic>
#include <pqxx/pqxx>

#include "sidecache/pg/pool.hpp"

namespace sidecache::pg {
namespace {

class ProbeReceiver : public pqxx::notification_receiver {
 public:
  ProbeReceiver(pqxx::connection_base& c, const std::string& channel, bool& got)
      : pqxx::notification_receiver(c, channel), got_(got) {}
  void operator()(const std::string&, int) override { got_ = true; }

 private:
  bool& got_;
};

std::string probe_channel() {
  static std::atomic<unsigned> n{0};
  return "sidecache_probe_" + std::to_string(::getpid()) + "_" + std::to_string(n++);
}

}  // namespace

std::string probe_notifications(pqxx::connection_base& listening, const std::string& notifier_conninfo,
                                std::chrono::milliseconds wait) {
  bool got = false;
  std::string channel = probe_channel();
  ProbeReceiver receiver(listening, channel, got);
  listening.get_notifs();
  {
    pqxx::nontransaction tx(listening);
    tx.exec("SELECT 1");  // LISTEN has been sent and answered
  }
  {
    std::unique_lock one_at_a_time(connect_mutex());  // see pool.hpp
    pqxx::connection notifier(notifier_conninfo);
    one_at_a_time.unlock();
    pqxx::nontransaction tx(notifier);
    tx.exec("NOTIFY " + channel);
  }
  auto until = std::chrono::steady_clock::now() + wait;
  while (!got && std::chrono::steady_clock::now() < until) listening.await_notification(0, 50000);
  if (got) return {};
  return "a NOTIFY from another session did not arrive within " + std::to_string(wait.count()) + " ms";
}

std::string listen_advice(const std::string& why) {
  return "LISTEN receives nothing on this connection (" + why +
         "): it goes through a pooler in transaction or statement mode (PgBouncer?), which cannot keep a LISTEN; set "
         "postgres.listen_dsn to a direct connection to the primary, or invalidations from triggers are lost";
}

}  // namespace sidecache::pg

#pragma once
// Whether LISTEN really receives notifications through a connection string.
// A pooler in transaction mode (PgBouncer) accepts LISTEN and then delivers
// nothing, because the session that listened goes back to its pool. The
// probe listens on a private channel, sends NOTIFY from a second session,
// and waits for it to arrive.
#include <chrono>
#include <string>

#include "sidecache/config/config.hpp"

namespace pqxx {
class connection_base;
}

namespace sidecache::pg {

// `listening` is an open connection (the one to be trusted with LISTEN);
// the NOTIFY comes from a new session on `notifier_conninfo`. Returns "" when
// the notification arrived within `wait`, else what went wrong.
std::string probe_notifications(pqxx::connection_base& listening, const std::string& notifier_conninfo,
                                std::chrono::milliseconds wait);

// The line that says what to do when the probe fails.
std::string listen_advice(const std::string& why);

}  // namespace sidecache::pg

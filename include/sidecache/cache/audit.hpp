#pragma once
// The staleness audit (docs/invalidation.md, "The staleness audit").
//
// A served value is re-read from PostgreSQL and the bytes compared. A
// difference is stale only if no invalidation covering the key was recorded
// after the value's fill began, looked up once the re-read has come back and
// `audit.grace` has passed (the time an invalidation may take from COMMIT,
// through NOTIFY, to the store). An L2 hit was valid when served, so such an
// invalidation came after the serve; for an L1 hit it may have come between
// the fill and the serve, which L1's own coherence covers.
//
// Auditor does this for a sample of the daemon's hits, off the request
// path, at most audit.max_per_second; `sidecache audit` does it for keys it
// reads from Redis (app/audit_command.cpp). Both use compare() and decide().
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sidecache/cache/filler.hpp"
#include "sidecache/cache/request.hpp"
#include "sidecache/cache/store.hpp"
#include "sidecache/cache/value.hpp"
#include "sidecache/metrics/metrics.hpp"

namespace sidecache::cache {

// One served value to check.
struct AuditCase {
  EntityRequest req;   // the key (its snapshot keeps the entity alive)
  ValueHeader header;  // of the value served
  std::string body;    // the bytes served (empty for a cached 404)
};

struct AuditOutcome {
  enum class Kind {
    same,     // PostgreSQL answers the same bytes
    covered,  // it differs, and an invalidation covering the key was recorded since the fill
    stale,    // it differs, and no such invalidation was recorded
    unknown,  // PostgreSQL or the store could not answer: nothing is known
  };
  Kind kind = Kind::unknown;
};

// Whether PostgreSQL's answer `fr` is the value served.
enum class Reread { same, differs, unknown };
Reread compare(const AuditCase& c, const pg::FillResult& fr);
// The decision after the grace: `now` is a lookup of the key's keys.
AuditOutcome::Kind decide(const AuditCase& c, const Lookup& now);

// Re-reads the value's query (Filler::fill_background) and compares.
net::awaitable<Reread> reread(Filler& filler, const AuditCase& c);
// Seconds from the served value's fill start to `at_us` (0 if before).
inline double filled_ago(const AuditCase& c, std::uint64_t at_us) {
  return at_us > c.header.created_us ? static_cast<double>(at_us - c.header.created_us) / 1e6 : 0;
}
// After `grace`, looks the key up and decides.
net::awaitable<AuditOutcome::Kind> confirm(Store& store, const AuditCase& c, std::chrono::microseconds grace);

class Auditor {
 public:
  // Audits waiting for their query, at most.
  static constexpr unsigned kMaxBacklog = 16;
  // stores[w] is worker w's store.
  Auditor(std::vector<Store*> stores, Filler& filler, metrics::Metrics* metrics);

  // Whether this hit is to be audited (audit.sample of them). Cheap: with
  // sample 0, one comparison.
  static bool sampled(const config::AuditConfig& a, double draw) { return a.sample > 0.0 && draw < a.sample; }

  // Audits a sampled hit in the background on `ex` (worker `worker`'s),
  // unless over audit.max_per_second or the backlog bound.
  void offer(AuditCase c, unsigned worker, net::any_io_executor ex);


 private:
  bool admit(const config::AuditConfig& a);
  net::awaitable<void> run(AuditCase c, unsigned worker);

  std::vector<Store*> stores_;
  Filler& filler_;
  metrics::Metrics* metrics_;
  std::mutex mu_;
  double tokens_ = 0;
  std::chrono::steady_clock::time_point refilled_{};
  // Shared with each audit's coroutine: a frame destroyed with its
  // io_context after the Auditor still has a counter to give back to.
  std::shared_ptr<std::atomic<unsigned>> pending_ = std::make_shared<std::atomic<unsigned>>(0);
};

}  // namespace sidecache::cache

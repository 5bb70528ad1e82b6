#pragma once
// Where the primary's WAL is now: what an invalidation records beside its
// watermark when fills may read replicas (docs/invalidation.md, "Read
// replicas"). PgWalPosition asks pg::WalClock; unit tests use fakes.
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>

#include "sidecache/pg/wal_clock.hpp"

namespace sidecache::cache {

namespace net = boost::asio;

class WalPosition {
 public:
  virtual ~WalPosition() = default;
  // A position read after this call began; nullopt when it cannot be read.
  virtual net::awaitable<std::optional<std::uint64_t>> now() = 0;
};

class PgWalPosition final : public WalPosition {
 public:
  explicit PgWalPosition(pg::WalClock& clock) : clock_(clock) {}
  net::awaitable<std::optional<std::uint64_t>> now() override;

 private:
  pg::WalClock& clock_;
};

}  // namespace sidecache::cache

#pragma once
// Per-tenant counts with bounded cardinality: only the busiest tenants get
// series of their own, everything else counts under "(other)".
//
// The busiest are found with the Space-Saving sketch (Metwally, Agrawal,
// El Abbadi, 2005): a fixed number of counters, the least one replaced by a
// new tenant, so memory stays bounded however many tenants come and go.
// Each scrape makes the top N of the sketch the exported tenants. A tenant's
// series counts what happened while it was exported (from 0 when it joins);
// the rest goes to "(other)". Every series only grows, as Prometheus
// counters must; a tenant that drops out of the top N loses its series.
//
// Pure logic; thread-safe.
#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sidecache::metrics {

// The label of every tenant without a series of its own (no tenant id can
// contain parentheses).
inline constexpr const char* kOtherTenants = "(other)";

class TenantTop {
 public:
  enum Kind { fill = 0, rejection = 1 };
  explicit TenantTop(std::size_t top_n);

  void add(std::string_view tenant, Kind kind);

  struct Row {
    std::string tenant;
    std::array<std::uint64_t, 2> counts{};  // [fill, rejection]
  };
  // Chooses the exported tenants again and returns their rows, then the
  // "(other)" row (always present).
  std::vector<Row> rows();

  std::size_t top_n() const { return top_n_; }

 private:
  const std::size_t top_n_;
  const std::size_t capacity_;
  std::mutex mu_;
  std::unordered_map<std::string, std::uint64_t> sketch_;  // tenant -> estimated events
  std::unordered_map<std::string, std::array<std::uint64_t, 2>> exported_;
  std::array<std::uint64_t, 2> other_{};
};

}  // namespace sidecache::metrics

#include "sidecache/metrics/tenant_top.hpp"

#include <algorithm>

namespace sidecache::metrics {

TenantTop::TenantTop(std::size_t top_n) : top_n_(top_n), capacity_(std::max<std::size_t>(64, top_n * 8)) {}

void TenantTop::add(std::string_view tenant, Kind kind) {
  std::string key(tenant);
  std::lock_guard lock(mu_);
  if (top_n_ > 0) {
    if (auto it = sketch_.find(key); it != sketch_.end()) {
      ++it->second;
    } else if (sketch_.size() < capacity_) {
      sketch_.emplace(key, 1);
    } else {
      // Space-Saving: the least counter goes to the newcomer, which
      // inherits its count (an overestimate that can only favour it).
      auto least = std::min_element(sketch_.begin(), sketch_.end(),
                                    [](const auto& a, const auto& b) { return a.second < b.second; });
      std::uint64_t count = least->second + 1;
      sketch_.erase(least);
      sketch_.emplace(key, count);
    }
  }
  if (auto it = exported_.find(key); it != exported_.end()) ++it->second[kind];
  else ++other_[kind];
}

std::vector<TenantTop::Row> TenantTop::rows() {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::uint64_t, const std::string*>> ranked;
  ranked.reserve(sketch_.size());
  for (const auto& [tenant, count] : sketch_) ranked.emplace_back(count, &tenant);
  std::size_t n = std::min(top_n_, ranked.size());
  // Ties broken by name, so the choice does not depend on hash order.
  std::partial_sort(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(n), ranked.end(),
                    [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : *a.second < *b.second; });
  std::unordered_map<std::string, std::array<std::uint64_t, 2>> next;
  for (std::size_t i = 0; i < n; ++i) {
    const std::string& t = *ranked[i].second;
    auto it = exported_.find(t);
    next.emplace(t, it == exported_.end() ? std::array<std::uint64_t, 2>{} : it->second);
  }
  exported_ = std::move(next);
  std::vector<Row> out;
  for (const auto& [tenant, counts] : exported_) out.push_back({tenant, counts});
  std::sort(out.begin(), out.end(), [](const Row& a, const Row& b) { return a.tenant < b.tenant; });
  out.push_back({kOtherTenants, other_});
  return out;
}

}  // namespace sidecache::metrics

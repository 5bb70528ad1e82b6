#pragma once
// What the failover tests (Sentinel, Redis Cluster) check once a master was
// killed and its replica promoted: every invalidation that answered 200
// still holds, and the ones that answered 503 were applied later.
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <string>
#include <vector>

#include "harness.hpp"

namespace sidecache::it {

// targets[i] was renamed to "after-<i>" in PostgreSQL, then invalidated;
// acknowledged[i]: that invalidation answered 200. Returns how many did.
inline int check_invalidations_survived(const Daemon& d, const std::vector<std::string>& targets,
                                        const std::vector<bool>& acknowledged) {
  auto name = [&](const std::string& t) {
    auto r = d.get(t);
    if (r.status != 200) return std::string();
    return std::string(boost::json::parse(r.body).as_object().at("display_name").as_string());
  };
  // None of the acknowledged keys reads its old row.
  int acked = 0;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    if (!acknowledged[i]) continue;
    ++acked;
    INFO("key " << i);
    CHECK(name(targets[i]) == "after-" + std::to_string(i));
  }
  // The ones answered 503 were queued and applied once the new master answered.
  for (std::size_t i = 0; i < targets.size(); ++i)
    CHECK(eventually([&] { return name(targets[i]) == "after-" + std::to_string(i); }));
  return acked;
}

}  // namespace sidecache::it

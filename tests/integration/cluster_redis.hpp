#pragma once
// Redis Cluster for the integration tests: three masters with a replica
// each (redis-cli --cluster create), on loopback, on ephemeral ports whose
// bus ports (port + 10000) are free too, in a temporary folder. One per
// test process (ClusterSet::get()).
#include <functional>
#include <string>
#include <vector>

namespace sidecache::it {

class ClusterSet {
 public:
  static ClusterSet& get();
  ~ClusterSet();
  ClusterSet(const ClusterSet&) = delete;
  ClusterSet& operator=(const ClusterSet&) = delete;

  const std::vector<int>& ports() const { return ports_; }
  int seed_port() const { return ports_.front(); }
  // redis-cli -c -p port args...; the output, trimmed.
  std::string cli(int port, const std::string& args) const;
  // The port of the master that serves `slot` now (CLUSTER SLOTS on the seed).
  int master_of(int slot) const;
  // The node id of the server on `port`.
  std::string id_of(int port) const;
  // The master ports, in CLUSTER SLOTS order.
  std::vector<int> masters() const;
  // The same, as the node on `port` sees them.
  std::vector<int> masters_seen_by(int port) const;
  // Moves `slot` from its master to the master on `to`, the way redis-cli
  // --cluster reshard does (IMPORTING, MIGRATING, MIGRATE every key, NODE on
  // every master). `between` runs after the keys moved and before the slot
  // is given to its new owner (ASK is answered meanwhile).
  void move_slot(int slot, int to, const std::function<void()>& between = {}) const;
  std::string logs() const;
  // kill(2) of the server on `port`.
  void signal(int port, int sig) const;
  // Waits until a replica took over from the master on `old_port`: every
  // slot has a master again, none of them on old_port.
  bool wait_promoted(int old_port) const;
  // What a daemon's redis: { ... } needs to use this cluster (after its
  // url, the seed): ", mode: cluster, nodes: [...]".
  std::string daemon_redis_extra() const;

 private:
  ClusterSet();
  std::string dir_;
  std::vector<int> ports_;
};

}  // namespace sidecache::it

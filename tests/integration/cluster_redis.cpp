#include "cluster_redis.hpp"

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "harness.hpp"

namespace sidecache::it {

namespace {

bool port_open(int port) {
  int fd = connect_loopback(port);
  if (fd >= 0) ::close(fd);
  return fd >= 0;
}

}  // namespace

ClusterSet& ClusterSet::get() {
  static ClusterSet c;
  return c;
}

ClusterSet::ClusterSet() {
  dir_ = make_temp_dir("cluster");
  // Six ports whose bus ports (+10000) are free and below 65536.
  while (ports_.size() < 6) {
    int p = free_port();
    if (p > 55000 || port_open(p + 10000)) continue;
    bool clash = false;
    for (int q : ports_) clash = clash || q == p || q + 10000 == p || p + 10000 == q;
    if (!clash) ports_.push_back(p);
  }
  std::string hosts;
  for (int p : ports_) {
    std::string d = dir_ + "/" + std::to_string(p);
    std::filesystem::create_directories(d);
    auto [rc, out] = run_command({"redis-server", "--port", std::to_string(p), "--bind", "127.0.0.1", "--cluster-enabled",
                                  "yes", "--cluster-config-file", d + "/nodes.conf", "--cluster-node-timeout", "1000",
                                  "--save", "", "--appendonly", "no", "--dir", d, "--daemonize", "yes", "--pidfile",
                                  d + "/redis.pid", "--logfile", d + "/redis.log"});
    if (rc != 0) throw std::runtime_error("redis-server (cluster) did not start: " + out);
    hosts += " 127.0.0.1:" + std::to_string(p);
  }
  for (int p : ports_)
    if (!eventually([&] { return cli(p, "ping") == "PONG"; })) throw std::runtime_error("a cluster node did not answer:\n" + logs());
  auto [rc, out] = run_command({"sh", "-c", "redis-cli --cluster create" + hosts + " --cluster-replicas 1 --cluster-yes"});
  if (rc != 0) throw std::runtime_error("redis-cli --cluster create failed:\n" + out);
  bool ok = eventually(
      [&] {
        for (int p : ports_) {
          if (cli(p, "cluster info").find("cluster_state:ok") == std::string::npos) return false;
          // Every node agrees on the roles: three masters with slots, three replicas.
          std::istringstream nodes(cli(p, "--no-raw cluster nodes"));
          std::size_t replicas = 0;
          for (std::string id, address, flags, rest; nodes >> id >> address >> flags && std::getline(nodes, rest);)
            if (flags.find("slave") != std::string::npos) ++replicas;
          if (masters_seen_by(p).size() != 3 || replicas != 3) return false;
        }
        return true;
      },
      300);
  if (!ok) throw std::runtime_error("the cluster did not settle (cluster_state:ok, 3 masters, 3 replicas):\n" + logs());
}

ClusterSet::~ClusterSet() {
  for (int p : ports_) kill_pidfile(dir_ + "/" + std::to_string(p) + "/redis.pid");
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void ClusterSet::signal(int port, int sig) const {
  std::ifstream in(dir_ + "/" + std::to_string(port) + "/redis.pid");
  int pid = 0;
  if (in >> pid && pid > 0) ::kill(pid, sig);
}

bool ClusterSet::wait_promoted(int old_port) const {
  return eventually(
      [&] {
        for (int p : ports_) {
          if (p == old_port) continue;
          std::string info = cli(p, "cluster info");
          if (info.find("cluster_state:ok") == std::string::npos) return false;
          auto m = masters_seen_by(p);
          if (m.size() != 3 || std::find(m.begin(), m.end(), old_port) != m.end()) return false;
          return true;
        }
        return false;
      },
      300);
}

std::string ClusterSet::daemon_redis_extra() const {
  std::string nodes;
  for (std::size_t i = 1; i < ports_.size(); ++i)
    nodes += (nodes.empty() ? "\"127.0.0.1:" : ", \"127.0.0.1:") + std::to_string(ports_[i]) + "\"";
  return ", mode: cluster, nodes: [" + nodes + "]";
}

std::string ClusterSet::cli(int port, const std::string& args) const { return redis_cli_on(port, args); }

std::vector<int> ClusterSet::masters() const { return masters_seen_by(seed_port()); }

std::vector<int> ClusterSet::masters_seen_by(int port) const {
  std::vector<int> out;
  std::istringstream in(cli(port, "--no-raw cluster nodes"));
  std::string line;
  while (std::getline(in, line)) {
    // <id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot>...:
    // a master that serves slots (right after --cluster create, a node that
    // is about to become a replica can still be listed as a master without
    // any).
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string w; fields >> w;) f.push_back(w);
    if (f.size() < 9 || f[2].find("master") == std::string::npos || f[2].find("fail") != std::string::npos) continue;
    auto colon = f[1].find(':'), at = f[1].find('@');
    if (colon != std::string::npos && at != std::string::npos) out.push_back(std::stoi(f[1].substr(colon + 1, at - colon - 1)));
  }
  return out;
}

int ClusterSet::master_of(int slot) const {
  std::istringstream in(cli(seed_port(), "cluster nodes"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("master") == std::string::npos) continue;
    // ... connected 0-5460 [5461->-id] ...
    std::istringstream words(line);
    std::string w, addr;
    int i = 0;
    while (words >> w) {
      if (i++ == 1) addr = w;
      if (i <= 8 || w.front() == '[') continue;
      auto dash = w.find('-');
      int a = std::stoi(w.substr(0, dash)), b = dash == std::string::npos ? a : std::stoi(w.substr(dash + 1));
      if (slot >= a && slot <= b) return std::stoi(addr.substr(addr.find(':') + 1, addr.find('@') - addr.find(':') - 1));
    }
  }
  return 0;
}

std::string ClusterSet::id_of(int port) const { return cli(port, "cluster myid"); }

void ClusterSet::move_slot(int slot, int to, const std::function<void()>& between) const {
  int from = master_of(slot);
  std::string s = std::to_string(slot), from_id = id_of(from), to_id = id_of(to);
  cli(to, "cluster setslot " + s + " importing " + from_id);
  cli(from, "cluster setslot " + s + " migrating " + to_id);
  for (int rounds = 0;;) {
    std::string keys = cli(from, "cluster getkeysinslot " + s + " 100");
    if (keys.empty()) break;
    std::string list;
    std::istringstream in(keys);
    std::string k;
    while (std::getline(in, k)) list += " '" + k + "'";
    // REPLACE: a MIGRATE whose answer was lost (the key reached the new
    // owner, and is still here) must not fail every retry with BUSYKEY.
    std::string out = cli(from, "migrate 127.0.0.1 " + std::to_string(to) + " \"\" 0 5000 replace keys" + list);
    if (++rounds > 1000) throw std::runtime_error("slot " + s + " does not empty: MIGRATE says " + out);
  }
  if (between) between();
  // The new owner first, then the old one, then the rest (as redis-cli
  // --cluster reshard does): the other order lets the two answer MOVED to
  // each other for a moment.
  cli(to, "cluster setslot " + s + " node " + to_id);
  cli(from, "cluster setslot " + s + " node " + to_id);
  for (int m : masters())
    if (m != to && m != from) cli(m, "cluster setslot " + s + " node " + to_id);
}

std::string ClusterSet::logs() const {
  std::string all;
  for (int p : ports_) all += "--- " + std::to_string(p) + "\n" + read_file(dir_ + "/" + std::to_string(p) + "/redis.log");
  return all;
}

}  // namespace sidecache::it

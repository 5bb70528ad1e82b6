#include "sentinel_redis.hpp"

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "harness.hpp"

namespace sidecache::it {

std::string SentinelSet::pidfile(int port) const { return dir_ + "/redis-" + std::to_string(port) + ".pid"; }

SentinelSet::SentinelSet() {
  dir_ = make_temp_dir("sentinel");
  first_ = free_port();
  do second_ = free_port(); while (second_ == first_);
  do sentinel_ = free_port(); while (sentinel_ == first_ || sentinel_ == second_);
  auto start = [&](int port, std::vector<std::string> extra) {
    std::vector<std::string> argv{"redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no", "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
                                  "--dir", dir_, "--daemonize", "yes", "--pidfile", pidfile(port), "--logfile",
                                  dir_ + "/redis-" + std::to_string(port) + ".log"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto [rc, out] = run_command(argv);
    if (rc != 0) throw std::runtime_error("redis-server did not start: " + out);
  };
  start(first_, {});
  start(second_, {"--replicaof", "127.0.0.1", std::to_string(first_)});
  if (!eventually([&] { return cli(second_, "info replication").find("master_link_status:up") != std::string::npos; }))
    throw std::runtime_error("the replica did not sync:\n" + logs());
  std::string conf = dir_ + "/sentinel.conf";
  std::ofstream(conf) << "port " << sentinel_ << "\nbind 127.0.0.1\ndir " << dir_ << "\n"
                      << "sentinel monitor " << kMaster << " 127.0.0.1 " << first_ << " 1\n"
                      << "sentinel down-after-milliseconds " << kMaster << " 400\n"
                      << "sentinel failover-timeout " << kMaster << " 4000\n"
                      << "sentinel parallel-syncs " << kMaster << " 1\n";
  auto [rc, out] = run_command({"redis-server", conf, "--sentinel", "--daemonize", "yes", "--pidfile",
                                dir_ + "/sentinel.pid", "--logfile", dir_ + "/sentinel.log"});
  if (rc != 0) throw std::runtime_error("redis-sentinel did not start: " + out);
  // Ready once the sentinel knows the master and has found its replica
  // healthy (else SENTINEL FAILOVER answers NOGOODSLAVE).
  if (!eventually([&] {
        std::string r = cli(sentinel_, std::string("sentinel replicas ") + kMaster);
        return master_port() == first_ && r.find(std::to_string(second_)) != std::string::npos &&
               r.find("master-link-status\nok") != std::string::npos && r.find("disconnected") == std::string::npos;
      }, 200))
    throw std::runtime_error("the sentinel did not find the master and its replica:\n" + logs());
}

SentinelSet::~SentinelSet() {
  for (const std::string& p : {pidfile(first_), pidfile(second_), dir_ + "/sentinel.pid"}) kill_pidfile(p);
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string SentinelSet::cli(int port, const std::string& args) const { return redis_cli_on(port, args); }

int SentinelSet::master_port() const {
  std::string out = cli(sentinel_, std::string("sentinel get-master-addr-by-name ") + kMaster);
  auto nl = out.find('\n');
  if (nl == std::string::npos) return 0;
  try {
    return std::stoi(out.substr(nl + 1));
  } catch (...) {
    return 0;
  }
}

void SentinelSet::signal(int port, int sig) const {
  std::ifstream in(pidfile(port));
  int pid = 0;
  if (in >> pid && pid > 0) ::kill(pid, sig);
}

bool SentinelSet::wait_failover(int old_port) const {
  return eventually(
      [&] {
        int m = master_port();
        return m != 0 && m != old_port && cli(m, "role").rfind("master", 0) == 0;
      },
      300);
}

std::string SentinelSet::daemon_redis_extra(bool dead_first) const {
  std::string dead = dead_first ? "\"127.0.0.1:" + std::to_string(free_port()) + "\", " : "";
  return ", mode: sentinel, sentinels: [" + dead + "\"127.0.0.1:" + std::to_string(sentinel_) + "\"], master_name: " + kMaster;
}

std::string SentinelSet::logs() const {
  std::string all;
  for (const auto& f : std::filesystem::directory_iterator(dir_))
    if (f.path().extension() == ".log") all += "--- " + f.path().filename().string() + "\n" + read_file(f.path().string());
  return all;
}

}  // namespace sidecache::it

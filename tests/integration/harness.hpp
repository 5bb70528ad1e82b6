#pragma once
// Integration-test harness: real redis-server and PostgreSQL (started by
// scripts/services.sh on loopback, ephemeral ports, a temporary folder), a
// real sidecache process, and a minimal HTTP/1.1 client over real sockets.
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <optional>
#include <string>
#include <vector>

namespace sidecache::it {

// The shared Redis + PostgreSQL for the whole test binary.
class Services {
 public:
  static Services& get();
  int redis_port() const { return redis_port_; }
  int pg_port() const { return pg_port_; }
  std::string dsn() const;
  std::string redis_url() const;

  void stop_redis();
  void start_redis();
  void stop_pg();
  void start_pg();
  // pgbouncer in transaction mode in front of PostgreSQL (default_pool_size
  // 2), started on first use and shared by the rest of the binary.
  int pgbouncer_port();
  std::string pgbouncer_dsn() { return dsn_on(pgbouncer_port()); }
  // A streaming replica (pg_basebackup -R) that applies WAL 300 ms late,
  // started on first use; stop_replica(true) kills it (immediate shutdown).
  int replica_port();
  std::string replica_dsn() { return dsn_on(replica_port()); }
  void stop_replica(bool immediate = false);
  // Runs SQL on the replica; returns the first column of the first row.
  std::string replica_sql(const std::string& statement);
  std::string dsn_on(int port) const;
  // Sends a signal to redis-server (SIGSTOP/SIGCONT/SIGKILL).
  void signal_redis(int sig);

  // Runs SQL on the app database; returns the first column of the first row.
  std::string sql(const std::string& statement);
  // Runs a redis-cli command; returns its output, trimmed.
  std::string redis_cli(const std::string& args);
  // Total executions of statements whose text contains `marker`.
  long long query_count(const std::string& marker);

  ~Services();

 private:
  Services();
  void run_script(const std::string& cmd);
  std::string dir_;
  bool owned_ = false;
  int redis_port_ = 0, pg_port_ = 0;
};

// Installs a daemon's triggers (twice: the SQL must be idempotent) and
// removes them at the end.
class Daemon;
struct Triggers {
  explicit Triggers(const Daemon& d);
  ~Triggers();
  const Daemon& d_;
};

// A parsed HTTP response.
struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// A TCP connection to 127.0.0.1:port, or -1.
int connect_loopback(int port);

// Sends raw bytes, reads until the server closes (or `timeout`), returns
// everything received.
// `closed_by_peer`, when given, tells whether the server closed the
// connection (rather than the timeout ending the wait).
std::string raw_exchange(int port, const std::string& bytes, std::chrono::milliseconds timeout = std::chrono::seconds(10),
                         bool* closed_by_peer = nullptr);
std::string raw_exchange_unix(const std::string& path, const std::string& bytes);
std::optional<Response> parse_response(const std::string& text);

// GET with Connection: close.
Response http_get(int port, const std::string& target, const std::vector<std::string>& extra_headers = {});
Response http_request(int port, const std::string& method, const std::string& target,
                      const std::vector<std::string>& extra_headers = {}, const std::string& body = {});

// One sidecache process with its own config, port and key prefix.
class Daemon {
 public:
  struct Options {
    Options();
    std::string extra_main;  // appended to the main YAML
    std::string listen;      // default: 127.0.0.1:<free port>
    std::string key_prefix;  // default: unique per daemon
    std::string redis_timeout = "50ms";
    std::string log_level = "debug";
    int redis_port = 0;        // 0: the real Redis; else e.g. a proxy in front of it
    std::string redis_url;     // instead of the above, as written (user, password, db)
    std::string redis_extra;   // more keys inside redis: { ... }, like ", breaker: { failures: 9 }"
    std::string invalidation_extra;  // more keys inside invalidation: { ... }
    std::vector<std::pair<std::string, std::string>> extra_entities;  // file name -> YAML, next to the usual ones
    std::string statement_timeout = "2s";
    std::string pg_dsn;          // default: the shared PostgreSQL
    std::string postgres_extra;  // more lines inside postgres:, like "\n  prepared: off"
    int pool_size = 4;
    int queue_limit = 256;
    int workers = 2;
    bool wait_ready = true;
  };
  Daemon();
  explicit Daemon(Options opt);
  ~Daemon();

  int port() const { return port_; }
  const std::string& prefix() const { return prefix_; }
  const std::string& channel() const { return channel_; }
  std::string config_path() const { return dir_ + "/sidecache.yaml"; }
  const std::string& dir() const { return dir_; }
  std::string log() const;
  // Its log without the request lines and PostgreSQL's connection chatter:
  // what it said of Redis, its fills and invalidations (the last
  // `max_bytes` of it), for a failure's message.
  std::string said(std::size_t max_bytes = 6000) const;
  pid_t pid() const { return pid_; }

  Response get(const std::string& target, const std::vector<std::string>& headers = {}) const {
    return http_get(port_, target, headers);
  }
  // SIGTERM and wait; returns the exit status (or -1 on a signal death).
  int terminate(std::chrono::seconds wait = std::chrono::seconds(15));
  // Waits for the process to exit by itself; its exit status (-1 on a
  // signal death, -2 when it still runs after `wait`).
  int wait_exit(std::chrono::seconds wait = std::chrono::seconds(15));

 private:
  std::string dir_;
  std::string prefix_;
  std::string channel_;
  int port_ = 0;
  pid_t pid_ = -1;
};

int free_port();
// A new folder under the temporary directory, named sidecache-<tag>-XXXXXX.
std::string make_temp_dir(const char* tag);
std::string read_file(const std::string& path);
std::string sidecache_binary();
std::string source_dir();

// Keeps `threads` clients reading `targets` (round robin) until stop();
// counts the answers by status (0: no answer).
class Load {
 public:
  Load(const Daemon& d, std::vector<std::string> targets, int threads, std::vector<std::string> headers = {})
      : targets_(std::move(targets)) {
    for (int t = 0; t < threads; ++t)
      threads_.emplace_back([this, &d, t, headers] {
        for (std::size_t i = static_cast<std::size_t>(t); !stop_; ++i) {
          auto r = d.get(targets_[i % targets_.size()], headers);
          std::lock_guard lock(mu_);
          ++by_status_[r.status];
        }
      });
  }
  std::map<int, int> stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    return by_status_;
  }
  ~Load() { stop(); }

 private:
  std::vector<std::string> targets_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::map<int, int> by_status_;
};

// Runs request(i) for i in [0, n) on n threads released together, so the
// requests really are concurrent; returns the answers in order of i.
inline std::vector<Response> all_at_once(int n, const std::function<Response(int)>& request) {
  std::vector<Response> answers(static_cast<std::size_t>(n));
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&, i] {
      ++ready;
      while (ready.load() < n) std::this_thread::yield();
      answers[static_cast<std::size_t>(i)] = request(i);
    });
  for (auto& t : threads) t.join();
  return answers;
}

// "200:1234 0:3 " for messages.
inline std::string dump(const std::map<int, int>& m) {
  std::string s;
  for (auto [k, v] : m) s += std::to_string(k) + ":" + std::to_string(v) + " ";
  return s;
}

// Polls `ok` every 50 ms, at most `tries` times.
template <class F>
bool eventually(F&& ok, int tries = 100) {
  for (int i = 0; i < tries; ++i) {
    if (ok()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// The value of the Prometheus sample line that starts with `series`, or -1.
inline double metric_sample(const std::string& text, const std::string& series) {
  std::size_t pos = 0;
  while ((pos = text.find(series, pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') {
      auto end = text.find('\n', pos);
      return std::stod(text.substr(pos + series.size(), end - pos - series.size()));
    }
    pos += series.size();
  }
  return -1;
}

// Runs `argv` and returns {exit status, combined output}.
std::pair<int, std::string> run_command(const std::vector<std::string>& argv);

// redis-cli -p port args... (args split by the shell); the output, trimmed.
std::string redis_cli_on(int port, const std::string& args);
// SIGCONT then SIGKILL to the process named in a pid file (a server a test
// started; stopped ones too), if any.
void kill_pidfile(const std::string& path);
// A new user of `org` named `name`; its id.
std::string insert_user(const std::string& org, const std::string& name);

}  // namespace sidecache::it

#include "harness.hpp"
#include "cluster_redis.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <pqxx/pqxx>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace sidecache::it {
namespace fs = std::filesystem;

std::string source_dir() { return SIDECACHE_SOURCE_DIR; }
std::string sidecache_binary() { return SIDECACHE_BINARY; }

std::string make_temp_dir(const char* tag) {
  std::string tmpl = (fs::temp_directory_path() / (std::string("sidecache-") + tag + "-XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  ::chmod(tmpl.c_str(), 0755);
  return tmpl;
}

std::string read_file(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// Runs SQL on `dsn`; returns the first column of the first row.
std::string first_value(const std::string& dsn, const std::string& statement) {
  pqxx::connection c(dsn);
  pqxx::nontransaction tx(c);
  auto r = tx.exec(statement);
  if (r.empty() || r.columns() == 0 || r[0][0].is_null()) return {};
  return r[0][0].c_str();
}

}  // namespace

std::pair<int, std::string> run_command(const std::vector<std::string>& argv) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) throw std::runtime_error("pipe failed");
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    ::dup2(pipefd[1], 2);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// ---------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------

Services& Services::get() {
  static Services s;
  return s;
}

Services::Services() {
  const char* existing = std::getenv("SC_SERVICES_DIR");
  if (existing && *existing) {
    dir_ = existing;
  } else {
    dir_ = make_temp_dir("services");
    owned_ = true;
    run_script("start");
  }
  redis_port_ = std::stoi(read_file(dir_ + "/redis.port"));
  pg_port_ = std::stoi(read_file(dir_ + "/pg.port"));
  // Demo schema plus the test tables, loaded once per test binary.
  pqxx::connection c(dsn());
  pqxx::nontransaction tx(c);
  tx.exec(read_file(source_dir() + "/config/examples/schema.sql"));
  tx.exec(read_file(source_dir() + "/tests/integration/schema.sql"));
  tx.exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
}

Services::~Services() {
  if (owned_) {
    run_script("stop");
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

void Services::run_script(const std::string& cmd) {
  auto [rc, out] = run_command({source_dir() + "/scripts/services.sh", cmd, dir_});
  if (rc != 0) throw std::runtime_error("services.sh " + cmd + " failed: " + out);
}

std::string Services::dsn() const { return dsn_on(pg_port_); }
std::string Services::dsn_on(int port) const {
  return "host=127.0.0.1 port=" + std::to_string(port) + " dbname=app user=app";
}

int Services::pgbouncer_port() {
  run_script("start-pgbouncer");  // a no-op when it runs
  return std::stoi(read_file(dir_ + "/pgbouncer.port"));
}

int Services::replica_port() {
  auto [rc, out] = run_command({source_dir() + "/scripts/services.sh", "start-replica", dir_, "300ms"});
  if (rc != 0) throw std::runtime_error("services.sh start-replica failed: " + out);
  return std::stoi(read_file(dir_ + "/replica.port"));
}

void Services::stop_replica(bool immediate) {
  auto [rc, out] = run_command({source_dir() + "/scripts/services.sh", "stop-replica", dir_, immediate ? "immediate" : "fast"});
  if (rc != 0) throw std::runtime_error("services.sh stop-replica failed: " + out);
}

std::string Services::replica_sql(const std::string& statement) { return first_value(replica_dsn(), statement); }

Triggers::Triggers(const Daemon& d) : d_(d) {
  auto [rc, sql] = run_command({sidecache_binary(), "triggers", "--config", d.config_path()});
  if (rc != 0) throw std::runtime_error("sidecache triggers failed: " + sql);
  Services::get().sql(sql);
  Services::get().sql(sql);
}

Triggers::~Triggers() {
  auto [rc, sql] = run_command({sidecache_binary(), "triggers", "--drop", "--config", d_.config_path()});
  if (rc == 0) Services::get().sql(sql);
}
std::string Services::redis_url() const { return "redis://127.0.0.1:" + std::to_string(redis_port_) + "/0"; }

void Services::stop_redis() { run_script("stop-redis"); }
void Services::start_redis() { run_script("start-redis"); }
void Services::stop_pg() { run_script("stop-pg"); }
void Services::signal_redis(int sig) { ::kill(std::stoi(read_file(dir_ + "/redis.pid")), sig); }
void Services::start_pg() { run_script("start-pg"); }

std::string Services::sql(const std::string& statement) { return first_value(dsn(), statement); }

std::string Services::redis_cli(const std::string& args) {
  std::vector<std::string> argv{"redis-cli", "-p", std::to_string(redis_port_)};
  std::istringstream ss(args);
  std::string a;
  while (ss >> a) argv.push_back(a);
  return trim(run_command(argv).second);
}

long long Services::query_count(const std::string& marker) {
  std::string v = sql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE '%" + marker +
                      "%' AND query NOT LIKE '%pg_stat_statements%'");
  return v.empty() ? 0 : std::stoll(v);
}

// ---------------------------------------------------------------------------
// HTTP client
// ---------------------------------------------------------------------------

namespace {

std::string exchange_fd(int fd, const std::string& bytes, std::chrono::milliseconds timeout, bool* closed = nullptr) {
  if (closed) *closed = false;
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  std::string out;
  char buf[65536];
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      if (closed) *closed = true;
      break;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace

int connect_loopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string raw_exchange(int port, const std::string& bytes, std::chrono::milliseconds timeout, bool* closed_by_peer) {
  int fd = connect_loopback(port);
  if (fd < 0) return {};
  return exchange_fd(fd, bytes, timeout, closed_by_peer);
}

std::string raw_exchange_unix(const std::string& path, const std::string& bytes) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return {};
  }
  return exchange_fd(fd, bytes, std::chrono::seconds(10));
}

std::optional<Response> parse_response(const std::string& text) {
  auto end = text.find("\r\n\r\n");
  if (end == std::string::npos || text.compare(0, 5, "HTTP/") != 0) return std::nullopt;
  Response r;
  std::istringstream hs(text.substr(0, end));
  std::string line;
  std::getline(hs, line);
  r.status = std::stoi(line.substr(9, 3));
  while (std::getline(hs, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value[0] == ' ') value.erase(0, 1);
    r.headers[name] = value;
  }
  std::string rest = text.substr(end + 4);
  auto cl = r.headers.find("content-length");
  r.body = cl == r.headers.end() ? rest : rest.substr(0, std::stoul(cl->second));
  return r;
}

Response http_request(int port, const std::string& method, const std::string& target,
                      const std::vector<std::string>& extra_headers, const std::string& body) {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
  for (const auto& h : extra_headers) req += h + "\r\n";
  if (!body.empty()) req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  auto r = parse_response(raw_exchange(port, req));
  if (!r) return Response{};  // status 0: no answer
  return *r;
}

Response http_get(int port, const std::string& target, const std::vector<std::string>& extra_headers) {
  return http_request(port, "GET", target, extra_headers);
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

// ---------------------------------------------------------------------------
// Daemon
// ---------------------------------------------------------------------------

std::string redis_cli_on(int port, const std::string& args) {
  return trim(run_command({"sh", "-c", "redis-cli -p " + std::to_string(port) + " " + args}).second);
}

void kill_pidfile(const std::string& path) {
  std::ifstream in(path);
  int pid = 0;
  if (in >> pid && pid > 0) {
    ::kill(pid, SIGCONT);
    ::kill(pid, SIGKILL);
  }
}

std::string insert_user(const std::string& org, const std::string& name) {
  return Services::get().sql("INSERT INTO users (id, org_id, email, display_name) VALUES (gen_random_uuid(), '" + org +
                             "', '" + name + "@test.example', '" + name + "') RETURNING id");
}

Daemon::Options::Options() {
  // Sanitizer builds run several times slower: scripts/test.sh widens the
  // Redis timeout there, so that slowness is not mistaken for an outage.
  if (const char* t = std::getenv("SC_TEST_REDIS_TIMEOUT")) redis_timeout = t;
  // The tests tagged [topology] run once more against a Redis Cluster
  // (tests/CMakeLists.txt): every daemon they start then uses it.
  if (const char* m = std::getenv("SC_TEST_REDIS_MODE"); m && std::string(m) == "cluster") {
    redis_url = "redis://127.0.0.1:" + std::to_string(ClusterSet::get().seed_port()) + "/0";
    redis_extra = ClusterSet::get().daemon_redis_extra();
  }
}

Daemon::Daemon() : Daemon(Options{}) {}

Daemon::Daemon(Options opt) {
  static std::atomic<int> counter{0};
  Services& s = Services::get();
  dir_ = make_temp_dir("daemon");
  // Every daemon has its own number, so its own LISTEN channel even when it
  // shares another's key prefix.
  const std::string id = std::to_string(::getpid()) + "_" + std::to_string(counter++);
  prefix_ = opt.key_prefix.empty() ? "it" + id + ":" : opt.key_prefix;
  port_ = free_port();
  channel_ = "it_" + id;
  fs::create_directories(dir_ + "/entities");
  for (const auto* from : {"/config/examples/entities", "/tests/integration/entities"})
    for (const auto& f : fs::directory_iterator(source_dir() + from))
      fs::copy_file(f.path(), dir_ + "/entities/" + f.path().filename().string());
  for (const auto& [name, yaml] : opt.extra_entities) std::ofstream(dir_ + "/entities/" + name) << yaml;
  std::string listen = opt.listen.empty() ? "127.0.0.1:" + std::to_string(port_) : opt.listen;
  std::ofstream(dir_ + "/sidecache.yaml") << "listen: \"" << listen << "\"\n"
                                          << "workers: " << opt.workers << "\n"
                                          << "key_prefix: \"" << prefix_ << "\"\n"
                                          << "log_level: " << opt.log_level << "\n"
                                          << "tenant: { param: org_id, type: uuid }\n"
                                          << "redis: { url: \"" << (!opt.redis_url.empty() ? opt.redis_url
                                                                       : opt.redis_port ? "redis://127.0.0.1:" + std::to_string(opt.redis_port) + "/0"
                                                                                        : s.redis_url())
                                          << "\", timeout: " << opt.redis_timeout << opt.redis_extra << " }\n"
                                          << "postgres:\n  dsn: \"" << (opt.pg_dsn.empty() ? s.dsn() : opt.pg_dsn) << "\"\n  pool_size: " << opt.pool_size
                                          << "\n  queue_limit: " << opt.queue_limit
                                          << "\n  statement_timeout: " << opt.statement_timeout << opt.postgres_extra << "\n"
                                          << "entities_dir: entities\n"
                                          << "defaults: { ttl: 5m, ttl_jitter: 10%, negative_ttl: 30s }\n"
                                          // Each daemon listens on its own channel, so triggers
                                          // installed for one test never reach another's daemon.
                                          << "invalidation: { channel: " << channel_ << opt.invalidation_extra << " }\n"
                                          << opt.extra_main;
  pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ == 0) {
    // A test binary that dies (a sanitizer abort, a crash) takes its daemons
    // with it instead of leaving them running.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);
    int fd = ::open((dir_ + "/sidecache.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    // The daemon must not inherit the test's own environment overrides.
    ::unsetenv("SIDECACHE_LISTEN");
    ::unsetenv("SIDECACHE_REDIS_URL");
    ::unsetenv("SIDECACHE_POSTGRES_DSN");
    std::string bin = sidecache_binary(), cfg = dir_ + "/sidecache.yaml";
    ::execl(bin.c_str(), bin.c_str(), "--config", cfg.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  if (!opt.wait_ready) return;
  for (int i = 0; i < 500; ++i) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("sidecache exited at start:\n" + log());
    }
    if (opt.listen.rfind("unix:", 0) == 0) {
      if (fs::exists(opt.listen.substr(5))) return;
    } else {
      // Ready, and the invalidation listener's flush at LISTEN is done (it
      // would otherwise invalidate what a test caches first).
      auto r = http_get(port_, "/readyz");
      // With L1 on, also until its subscription is up (L1 keeps nothing
      // before): a slow start (sanitizers, a cluster) would otherwise turn
      // a test's first L1 hits into L2 hits. Bounded, for the tests that
      // start with Redis out of reach on purpose.
      // Likewise until the flush at LISTEN took effect: one still waiting
      // for Redis (not connected yet) would invalidate, when it lands, what
      // the test cached first (longer: a cluster's flush is slow under a
      // sanitizer).
      const bool l1_off = r.body.find("\"l1\":{\"state\":\"off\"") != std::string::npos;
      const bool flushing = r.body.find("\"invalidation_listener\":{\"state\":\"flushing\"") != std::string::npos;
      if (r.status == 200 && r.body.find("\"invalidation_listener\":{\"state\":\"connecting\"") == std::string::npos &&
          (!l1_off || i >= 150) && (!flushing || i >= 400))
        return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error("sidecache did not come up:\n" + log());
}

Daemon::~Daemon() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string Daemon::log() const { return read_file(dir_ + "/sidecache.log"); }

std::string Daemon::said(std::size_t max_bytes) const {
  std::istringstream lines(log());
  std::string out;
  for (std::string line; std::getline(lines, line);) {
    bool request = line.find(" GET /") != std::string::npos || line.find(" POST /") != std::string::npos ||
                   line.find(" DELETE /") != std::string::npos;
    if (!request && line.find("postgres: connection") == std::string::npos) out += line + "\n";
  }
  return out.size() > max_bytes ? out.substr(out.size() - max_bytes) : out;
}

int Daemon::terminate(std::chrono::seconds wait) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  return wait_exit(wait);
}

int Daemon::wait_exit(std::chrono::seconds wait) {
  if (pid_ <= 0) return -1;
  auto deadline = std::chrono::steady_clock::now() + wait;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -2;  // still running: the destructor kills it
}

}  // namespace sidecache::it

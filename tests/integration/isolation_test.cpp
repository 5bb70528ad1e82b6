// Tenant isolation under cancellation: the regression test for the class of
// bug where a request abandoned after its Redis command was sent leaves the
// connection one reply behind, and the next caller reads someone else's
// reply. Redis sits behind a proxy that delays every chunk, the Redis
// timeout is shorter than the delay (so replies routinely arrive after their
// command was given up), and clients hang up mid-request. Every answer must
// belong to the tenant asked for.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>

#include "harness.hpp"

using namespace sidecache::it;
namespace json = boost::json;

namespace {

// A TCP proxy to 127.0.0.1:target that sleeps 0..max_delay_us before
// forwarding each chunk, in both directions.
class DelayProxy {
 public:
  DelayProxy(int target, int max_delay_us) : target_(target), max_delay_us_(max_delay_us) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(listen_fd_, 64);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~DelayProxy() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    acceptor_.join();
    std::lock_guard lock(mu_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    for (auto& t : pumps_) t.join();
    for (int fd : fds_) ::close(fd);
  }
  int port() const { return port_; }

 private:
  void accept_loop() {
    while (!stop_) {
      int c = ::accept(listen_fd_, nullptr, nullptr);
      if (c < 0) return;
      int r = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(target_));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::connect(r, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(c);
        ::close(r);
        continue;
      }
      std::lock_guard lock(mu_);
      fds_.push_back(c);
      fds_.push_back(r);
      pumps_.emplace_back([this, c, r] { pump(c, r); });
      pumps_.emplace_back([this, c, r] { pump(r, c); });
    }
  }
  void pump(int from, int to) {
    std::mt19937 rng(static_cast<unsigned>(from * 7919 + to));
    std::uniform_int_distribution<int> delay(0, max_delay_us_);
    char buf[16384];
    for (;;) {
      ssize_t n = ::recv(from, buf, sizeof buf, 0);
      if (n <= 0) break;
      std::this_thread::sleep_for(std::chrono::microseconds(delay(rng)));
      if (::send(to, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) break;
    }
    ::shutdown(to, SHUT_WR);
  }

  int target_, max_delay_us_;
  int listen_fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> pumps_;
};

std::string tenant(int t) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "00000000-0000-0000-0000-%012d", t);
  return buf;
}

// Sends a request and hangs up at once, or after `wait_us`, without reading.
void hang_up(int port, const std::string& req, int wait_us) {
  int fd = connect_loopback(port);
  if (fd < 0) return;
  (void)::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  if (wait_us) std::this_thread::sleep_for(std::chrono::microseconds(wait_us));
  ::close(fd);
}

}  // namespace

TEST_CASE("tenant isolation holds while requests are cancelled and Redis replies arrive late") {
  const char* env = std::getenv("SC_TEST_ISOLATION_REQUESTS");
  const int total = env ? std::atoi(env) : 100000;
  DelayProxy proxy(Services::get().redis_port(), 3000);
  Daemon::Options o;
  o.redis_port = proxy.port();
  o.redis_timeout = "2ms";  // shorter than the proxy's delay: replies often come after the command was given up
  o.redis_extra = ", breaker: { failures: 1000000 }";  // keep using Redis through it all
  o.pool_size = 8;
  o.log_level = "warn";
  Daemon d(o);

  constexpr int kThreads = 8;
  std::atomic<int> next{0}, answered{0}, mismatches{0}, cancelled{0}, other{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; ++th) {
    threads.emplace_back([&, th] {
      std::mt19937 rng(static_cast<unsigned>(th + 1));
      std::uniform_int_distribution<int> pick_t(1, 40), pick_k(1, 25), mode(0, 99);
      while (next.fetch_add(1) < total) {
        int t = pick_t(rng), k = pick_k(rng);
        std::string target = "/v1/entities/tenant_row?org_id=" + tenant(t) + "&k=" + std::to_string(k);
        int m = mode(rng);
        if (m < 10) {  // hang up right after sending, or while the reply is on its way
          hang_up(d.port(), "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n", m < 5 ? 0 : 1500);
          ++cancelled;
          continue;
        }
        if (m < 13) {  // an invalidation now and then keeps fills going
          http_request(d.port(), "DELETE", target);
          continue;
        }
        auto r = d.get(target);
        if (r.status != 200) {
          ++other;
          continue;
        }
        ++answered;
        auto b = json::parse(r.body).as_object();
        if (b.at("org_id").as_string() != tenant(t) || b.at("k").as_int64() != k) ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  WARN(total << " requests: " << answered << " answers checked, " << cancelled << " cancelled, " << other
             << " not 200, " << mismatches << " answers of the wrong tenant or key");
  CHECK(mismatches == 0);
  CHECK(answered > total / 2);
  CHECK(d.get("/healthz").status == 200);
}

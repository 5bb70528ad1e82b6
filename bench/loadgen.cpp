// Load tools for bench/run.sh, where wrk cannot do the job:
//
//   loadgen rate http PORT TARGET RATE SECONDS CONNS
//   loadgen rate redis PORT KEY RATE SECONDS CONNS
//       Open-loop load at a fixed rate (wrk2-style): request i is due at
//       start + i/RATE and its latency counts from then, so a stall shows in
//       the tail instead of hiding (no coordinated omission). HTTP/1.1
//       keep-alive GETs, or Redis GETs, one outstanding per connection.
//       Prints: sent=N errors=N p50_us=.. p99_us=.. p999_us=.. max_us=..
//
//   loadgen stampede PORT TARGET N
//       Opens N connections, then sends one GET on each as close together
//       as it can, and waits for every answer. Prints the status counts,
//       p50/p99/max latency of each request from its own send, and when the
//       first and the last answer came, from the first send.
//
//   loadgen fill-redis PORT KEY_TEMPLATE COUNT BODY_BYTES TTL_S
//       Writes COUNT cached values in sidecache's value format (the 24-byte
//       header, then a JSON body of BODY_BYTES) under KEY_TEMPLATE with
//       "{}" replaced by 1..COUNT, pipelined. For the L1 RSS scenario.
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("connect");
    std::exit(2);
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Whether `buf` holds one whole response; sets `used` to its length and
// `status` to its HTTP status (or 200 for a Redis bulk reply).
bool complete_http(const std::string& buf, std::size_t& used, int& status) {
  auto end = buf.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  status = std::atoi(buf.c_str() + 9);
  std::size_t len = 0;
  auto cl = buf.find("Content-Length: ");
  if (cl == std::string::npos) cl = buf.find("content-length: ");
  if (cl != std::string::npos && cl < end) len = std::strtoul(buf.c_str() + cl + 16, nullptr, 10);
  if (buf.size() < end + 4 + len) return false;
  used = end + 4 + len;
  return true;
}

bool complete_redis(const std::string& buf, std::size_t& used, int& status) {
  auto nl = buf.find("\r\n");
  if (nl == std::string::npos) return false;
  if (buf[0] != '$') {
    used = nl + 2;
    status = 500;
    return true;
  }
  long len = std::strtol(buf.c_str() + 1, nullptr, 10);
  if (len < 0) {
    used = nl + 2;
    status = 404;
    return true;
  }
  if (buf.size() < nl + 2 + static_cast<std::size_t>(len) + 2) return false;
  used = nl + 2 + static_cast<std::size_t>(len) + 2;
  status = 200;
  return true;
}

struct Conn {
  int fd;
  std::string in;
  bool busy = false;
  Clock::time_point due;
};

// `n` connections, each registered for reading with its index.
std::vector<Conn> open_all(int port, int n, int ep) {
  std::vector<Conn> cs(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < cs.size(); ++i) {
    cs[i].fd = connect_to(port);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
  }
  return cs;
}

double pct(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::size_t i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
  return v[i];
}

int rate(bool redis, int port, const std::string& what, double per_s, double seconds, int conns) {
  std::string req;
  if (redis)
    req = "*2\r\n$3\r\nGET\r\n$" + std::to_string(what.size()) + "\r\n" + what + "\r\n";
  else
    req = "GET " + what + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  int ep = ::epoll_create1(0);
  std::vector<Conn> cs = open_all(port, conns, ep);
  std::deque<std::size_t> idle;
  for (std::size_t i = 0; i < cs.size(); ++i) idle.push_back(i);
  std::deque<Clock::time_point> backlog;  // due but no free connection yet
  std::vector<double> lat;
  lat.reserve(static_cast<std::size_t>(per_s * seconds) + 16);
  long errors = 0, sent = 0;
  const long total = static_cast<long>(per_s * seconds);
  const auto start = Clock::now() + std::chrono::milliseconds(50);
  auto due_of = [&](long i) {
    return start + std::chrono::nanoseconds(static_cast<long long>(static_cast<double>(i) * 1e9 / per_s));
  };
  long scheduled = 0, done = 0;
  char buf[65536];
  while (done < total) {
    auto now = Clock::now();
    while (scheduled < total && due_of(scheduled) <= now) backlog.push_back(due_of(scheduled++));
    while (!backlog.empty() && !idle.empty()) {
      Conn& c = cs[idle.front()];
      idle.pop_front();
      c.busy = true;
      c.due = backlog.front();
      backlog.pop_front();
      if (::write(c.fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) ++errors;
      ++sent;
    }
    int timeout_ms = 0;
    if (backlog.empty() && scheduled < total) {
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(due_of(scheduled) - Clock::now()).count();
      timeout_ms = static_cast<int>(std::max<long long>(0, wait));
    }
    epoll_event evs[256];
    int n = ::epoll_wait(ep, evs, 256, scheduled < total && backlog.empty() ? timeout_ms : 10);
    for (int k = 0; k < n; ++k) {
      std::size_t i = evs[k].data.u64;
      Conn& c = cs[i];
      ssize_t r = ::read(c.fd, buf, sizeof buf);
      if (r <= 0) {
        std::fprintf(stderr, "loadgen: connection closed\n");
        return 2;
      }
      c.in.append(buf, static_cast<std::size_t>(r));
      std::size_t used;
      int status;
      while (c.busy && (redis ? complete_redis(c.in, used, status) : complete_http(c.in, used, status))) {
        auto t = Clock::now();
        lat.push_back(std::chrono::duration<double, std::micro>(t - c.due).count());
        if (status != 200) ++errors;
        c.in.erase(0, used);
        c.busy = false;
        ++done;
        idle.push_back(i);
      }
    }
  }
  std::printf("sent=%ld errors=%ld p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f\n", sent, errors,
              pct(lat, 0.50), pct(lat, 0.99), pct(lat, 0.999), pct(lat, 1.0));
  return errors ? 1 : 0;
}

int stampede(int port, const std::string& target, int n) {
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  int ep = ::epoll_create1(0);
  std::vector<Conn> cs = open_all(port, n, ep);
  ::usleep(200000);  // let the server accept every connection first
  auto start = Clock::now();
  for (auto& c : cs) {
    c.busy = true;
    c.due = Clock::now();  // this request's own send time
    if (::write(c.fd, req.data(), req.size()) < 0) std::perror("write");
  }
  auto sent = Clock::now();
  std::vector<double> lat;    // each request's latency, from its own send
  std::vector<double> since;  // each answer's time since the burst began
  std::map<int, int> statuses;
  char buf[65536];
  int left = n;
  while (left > 0) {
    epoll_event evs[256];
    int k = ::epoll_wait(ep, evs, 256, 10000);
    if (k <= 0) break;
    for (int j = 0; j < k; ++j) {
      Conn& c = cs[evs[j].data.u64];
      ssize_t r = ::read(c.fd, buf, sizeof buf);
      if (r <= 0) continue;
      c.in.append(buf, static_cast<std::size_t>(r));
      std::size_t used;
      int status;
      if (c.busy && complete_http(c.in, used, status)) {
        c.busy = false;
        auto now = Clock::now();
        lat.push_back(std::chrono::duration<double, std::micro>(now - c.due).count());
        since.push_back(std::chrono::duration<double, std::micro>(now - start).count());
        ++statuses[status];
        --left;
      }
    }
  }
  std::printf("answers=%zu", lat.size());
  for (auto [s, c] : statuses) std::printf(" status_%d=%d", s, c);
  std::printf(" send_us=%.0f p50_us=%.0f p99_us=%.0f max_us=%.0f first_answer_us=%.0f last_answer_us=%.0f\n",
              std::chrono::duration<double, std::micro>(sent - start).count(), pct(lat, 0.5), pct(lat, 0.99),
              pct(lat, 1.0), pct(since, 0.0), pct(since, 1.0));
  return left == 0 ? 0 : 1;
}

int fill_redis(int port, const std::string& tmpl, long count, std::size_t body_bytes, long ttl_s) {
  redisContext* c = redisConnect("127.0.0.1", port);
  if (!c || c->err) {
    std::fprintf(stderr, "loadgen: cannot connect to Redis\n");
    return 2;
  }
  auto now_us = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  // The value header (src/cache/value.hpp): 'S' 'C' version flags | fill_us u32 | created u64 | soft expiry u64.
  std::string value(24, '\0');
  value[0] = 'S';
  value[1] = 'C';
  value[2] = 1;
  std::uint64_t soft = now_us + static_cast<std::uint64_t>(ttl_s) * 1000000;
  std::memcpy(&value[8], &now_us, 8);
  std::memcpy(&value[16], &soft, 8);
  std::string body = "{\"pad\":\"" + std::string(body_bytes > 12 ? body_bytes - 12 : 0, 'x') + "\"}";
  value += body;
  std::string ttl = std::to_string(ttl_s);
  long pending = 0;
  for (long i = 1; i <= count; ++i) {
    std::string key = tmpl;
    key.replace(key.find("{}"), 2, std::to_string(i));
    redisAppendCommand(c, "SET %b %b EX %s", key.data(), key.size(), value.data(), value.size(), ttl.c_str());
    if (++pending == 1000 || i == count) {
      for (; pending > 0; --pending) {
        void* r = nullptr;
        if (redisGetReply(c, &r) != REDIS_OK) return 2;
        freeReplyObject(r);
      }
    }
  }
  redisFree(c);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 7 && a[0] == "rate")
    return rate(a[1] == "redis", std::stoi(a[2]), a[3], std::stod(a[4]), std::stod(a[5]), std::stoi(a[6]));
  if (a.size() == 4 && a[0] == "stampede") return stampede(std::stoi(a[1]), a[2], std::stoi(a[3]));
  if (a.size() == 6 && a[0] == "fill-redis")
    return fill_redis(std::stoi(a[1]), a[2], std::stol(a[3]), std::stoul(a[4]), std::stol(a[5]));
  std::fprintf(stderr,
               "usage: loadgen rate http|redis PORT TARGET|KEY RATE SECONDS CONNS\n"
               "       loadgen stampede PORT TARGET N\n"
               "       loadgen fill-redis PORT KEY_TEMPLATE COUNT BODY_BYTES TTL_S\n");
  return 2;
}

#include "sidecache/app/commands.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "sidecache/cache/key_layout.hpp"
#include "sidecache/cache/key.hpp"
#include "sidecache/cache/params.hpp"
#include "sidecache/pg/entity_check.hpp"
#include "sidecache/pg/replicas.hpp"
#include "sidecache/redis/probe.hpp"

namespace sidecache::app {

int health(const config::Config& cfg) {
  int fd = -1;
  if (cfg.listen.is_unix) {
    fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, cfg.listen.path.c_str(), sizeof a.sun_path - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) fd = (::close(fd), -1);
  } else {
    // A wildcard listener is asked on loopback, of its own family.
    std::string host = cfg.listen.host;
    if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
    if (host == "::") host = "::1";
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (auto* a4 = reinterpret_cast<sockaddr_in*>(&ss); ::inet_pton(AF_INET, host.c_str(), &a4->sin_addr) == 1) {
      a4->sin_family = AF_INET;
      a4->sin_port = htons(cfg.listen.port);
      len = sizeof(sockaddr_in);
    } else if (auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss); ::inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) == 1) {
      a6->sin6_family = AF_INET6;
      a6->sin6_port = htons(cfg.listen.port);
      len = sizeof(sockaddr_in6);
    }
    if (len != 0) {
      fd = ::socket(ss.ss_family, SOCK_STREAM, 0);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) fd = (::close(fd), -1);
    } else {
      errno = EINVAL;
    }
  }
  if (fd < 0) {
    std::cerr << "sidecache health: cannot connect to " << cfg.listen.text << ": " << std::strerror(errno) << "\n";
    return 1;
  }
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const std::string req = "GET /healthz HTTP/1.1\r\nHost: sidecache\r\nConnection: close\r\n\r\n";
  std::string resp;
  if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
    char buf[512];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) resp.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (resp.rfind("HTTP/1.1 200", 0) == 0) {
    std::cout << "sidecache health: ok\n";
    return 0;
  }
  std::cerr << "sidecache health: " << (resp.empty() ? "no answer" : resp.substr(0, resp.find('\r'))) << "\n";
  return 1;
}

int check_connect(const config::Config& cfg) {
  int problems = 0;
  const auto& r = cfg.redis;
  std::string server;
  std::string redis_error = redis::probe(r, &server);
  std::string what = r.mode == config::RedisMode::sentinel ? "redis master '" + r.master_name + "' (sentinel)"
                     : r.mode == config::RedisMode::cluster ? "redis cluster, seed " + config::mask_secrets(r.url)
                                                            : "redis " + config::mask_secrets(r.url);
  if (!redis_error.empty()) {
    std::cerr << "  " << what << ": " << redis_error << "\n";
    ++problems;
  } else {
    std::cout << "  " << what << ": ok" << (r.mode == config::RedisMode::sentinel ? ", at " + server : "")
              << (r.tls() ? ", over TLS" : "") << "\n";
  }
  auto sql_problems = pg::check_entities(cfg);
  bool connected = sql_problems.empty() || sql_problems.front().rfind("postgres: ", 0) != 0;
  if (connected) std::cout << "  postgres: ok\n";
  for (const auto& p : sql_problems) std::cerr << "  " << p << "\n";
  problems += static_cast<int>(sql_problems.size());
  for (std::size_t i = 0; i < cfg.postgres.replicas.size(); ++i) {
    const std::string& dsn = cfg.postgres.replicas[i];
    std::string why = pg::probe_replica(cfg.postgres, dsn);
    std::string line = "  postgres.replicas[" + std::to_string(i) + "] " + config::mask_secrets(dsn) + ": ";
    if (why.empty()) {
      std::cout << line << "ok\n";
    } else {
      std::cerr << line << why << "\n";
      ++problems;
    }
  }
  return problems;
}

int print_key(const config::Config& cfg, const std::vector<std::string>& args) {
  if (args.empty()) {
    std::cerr << "sidecache key: give ENTITY name=value...\n";
    return 64;
  }
  const config::Entity* e = cfg.find_entity(args[0]);
  if (!e) {
    std::cerr << "sidecache key: no entity named '" << args[0] << "'\n";
    return 2;
  }
  cache::QueryPairs pairs;
  for (std::size_t i = 1; i < args.size(); ++i) {
    auto eq = args[i].find('=');
    if (eq == std::string::npos) {
      std::cerr << "sidecache key: '" << args[i] << "' is not name=value\n";
      return 64;
    }
    pairs.emplace_back(args[i].substr(0, eq), args[i].substr(eq + 1));
  }
  auto values = cache::bind_params(*e, pairs);
  if (auto* err = std::get_if<cache::ParamError>(&values)) {
    std::cerr << "sidecache key: " << err->message << "\n";
    return 2;
  }
  std::cout << cache::KeyLayout(cfg).value(*e, std::get<std::vector<std::string>>(values)) << "\n";
  return 0;
}

int print_problems(const config::LoadError& e) {
  std::cerr << "sidecache: the configuration has " << e.problems().size() << " problem(s):\n";
  for (const auto& p : e.problems()) std::cerr << "  " << p.to_string() << "\n";
  return 2;
}

}  // namespace sidecache::app

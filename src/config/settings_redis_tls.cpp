// Rows of the settings table for Redis over TLS (`redis.tls:`), and the
// checks of those settings taken together (docs/configuration.md, "Redis
// over TLS").
#include <cerrno>
#include <cstring>
#include <fstream>

#include "setting_rows.hpp"

namespace sidecache::config::detail {
namespace {

// A PEM file, relative to the main file's folder, that must be readable now:
// a missing CA file is a config error at start, not a TLS error later.
auto pem_file() {
  return [](const std::string& k, const std::string& v, const std::string& dir, std::string& out) {
    if (v.empty()) {
      out.clear();
      return std::string();
    }
    out = resolve(dir, v);
    std::ifstream in(out);
    if (!in) return k + " '" + out + "' cannot be read: " + std::strerror(errno) + "; give the path of a PEM file (relative to this file)";
    return std::string();
  };
}

}  // namespace

void add_redis_tls_settings(std::vector<Setting>& t) {
  const auto R = OnReload::restart;
  t.push_back(row("redis.tls.enabled", "true | false", "false", R,
                  "TLS to Redis. A `rediss://` URL turns it on too.",
                  [](auto& c) -> auto& { return c.redis.tls_enabled; }, boolean()));
  t.push_back(row("redis.tls.ca_file", "path to a PEM file", "", R,
                  "The CA certificates that may sign the server's certificate; empty: the system's CA store.",
                  [](auto& c) -> auto& { return c.redis.tls_ca_file; }, pem_file()));
  t.push_back(row("redis.tls.cert_file", "path to a PEM file", "", R,
                  "A client certificate (chain) for servers that ask for one (`tls-auth-clients yes`); needs `key_file`.",
                  [](auto& c) -> auto& { return c.redis.tls_cert_file; }, pem_file()));
  t.push_back(row("redis.tls.key_file", "path to a PEM file", "", R, "The client certificate's private key.",
                  [](auto& c) -> auto& { return c.redis.tls_key_file; }, pem_file()));
  t.push_back(row("redis.tls.server_name", "host name", "the URL's host", R,
                  "Sent as SNI and checked against the server's certificate (its DNS or IP names).",
                  [](auto& c) -> auto& { return c.redis.tls_server_name; },
                  text([](const std::string& s) {
                    return !s.empty() && s.find_first_of(" \t/:@") == std::string::npos;
                  }, "redis.tls.server_name must be a host name like redis.internal, the name the server's certificate carries")));
  t.back().literal_default = false;
  t.push_back(row("redis.tls.verify", "true | false", "true", R,
                  "Check the server's certificate chain and name. `false` accepts any certificate (a warning is logged at every start).",
                  [](auto& c) -> auto& { return c.redis.tls_verify; }, boolean()));
}

std::string redis_tls_problem(const RedisConfig& r) {
  bool any = !r.tls_ca_file.empty() || !r.tls_cert_file.empty() || !r.tls_key_file.empty() ||
             !r.tls_server_name.empty() || !r.tls_verify;
  if (!r.tls()) {
    if (any)
      return "redis.tls settings are given but TLS is off: use a rediss:// URL or set redis.tls.enabled: true";
    return {};
  }
  if (r.is_unix) return "TLS over a unix socket is not supported: use a rediss://host:port URL, or turn TLS off for the socket";
  if (r.tls_cert_file.empty() != r.tls_key_file.empty())
    return r.tls_cert_file.empty() ? "redis.tls.key_file is set without redis.tls.cert_file: give both (the client certificate and its key)"
                                   : "redis.tls.cert_file is set without redis.tls.key_file: give both (the client certificate and its key)";
  return {};
}

}  // namespace sidecache::config::detail

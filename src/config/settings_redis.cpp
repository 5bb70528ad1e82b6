// Rows of the settings table for Redis over TLS (`redis.tls:`) and for how
// Redis is found (`redis.mode`, Sentinel), and the checks of those settings
// taken together (docs/configuration.md, "Redis over TLS", "Redis
// Sentinel").
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

// A list of host:port (sentinels, cluster seed nodes). `like` shows how
// to write it.
template <class Get>
Setting host_ports(const char* key, const char* env, const char* doc, Get get, std::string like) {
  Setting s = row(key, "list of host:port", "[]", OnReload::restart, doc, get,
                  [like](const std::string& k, const std::string& v, const std::string&, std::vector<HostPort>& out) {
                    out.clear();
                    std::size_t start = 0;
                    while (!v.empty() && start <= v.size()) {
                      // One per YAML list item, or comma-separated (the environment).
                      std::size_t end = v.find_first_of("\n,", start);
                      std::string item = v.substr(start, end == std::string::npos ? std::string::npos : end - start);
                      item.erase(0, item.find_first_not_of(' '));
                      item.erase(item.find_last_not_of(' ') + 1);
                      std::string why;
                      auto l = parse_listen(item, why);
                      if (!l || l->is_unix || l->port == 0) return k + ": '" + item + "' is not host:port; write them like " + like;
                      out.push_back(HostPort{l->host, l->port});
                      if (end == std::string::npos) break;
                      start = end + 1;
                    }
                    return std::string();
                  });
  s.list = true;
  s.literal_default = false;
  s.env = env;
  return s;
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

void add_redis_topology_settings(std::vector<Setting>& t) {
  const auto R = OnReload::restart;
  Setting mode = row("redis.mode", "standalone | sentinel | cluster", "standalone", R,
                  "`standalone`: `redis.url` is the server. `sentinel`: the master named `master_name`, found through `sentinels` (the URL then gives only the scheme, user, password and db). `cluster`: Redis Cluster; `redis.url` is one seed node and `nodes` more (docs/operations.md, \"Redis Cluster\").",
                  [](auto& c) -> auto& { return c.redis.mode; },
                  [](const std::string& k, const std::string& v, const std::string&, RedisMode& out) {
                    if (v == "standalone") out = RedisMode::standalone;
                    else if (v == "sentinel") out = RedisMode::sentinel;
                    else if (v == "cluster") out = RedisMode::cluster;
                    else return k + " must be standalone, sentinel or cluster";
                    return std::string();
                  });
  mode.env = "SIDECACHE_REDIS_MODE";
  t.push_back(mode);
  t.push_back(host_ports("redis.sentinels", "SIDECACHE_REDIS_SENTINELS",
                         "Sentinel mode: the sentinels to ask, in order, for the master's address (and to hear `+switch-master` from).",
                         [](auto& c) -> auto& { return c.redis.sentinels; }, "sentinels: [\"10.0.0.1:26379\", \"10.0.0.2:26379\"]"));
  t.push_back(host_ports("redis.nodes", "SIDECACHE_REDIS_NODES",
                         "Cluster mode: more seed nodes, asked for the slot map after `redis.url`'s (any node of the cluster will do; list a few in case one is down).",
                         [](auto& c) -> auto& { return c.redis.nodes; }, "nodes: [\"10.0.0.1:7000\", \"10.0.0.2:7000\"]"));
  Setting master = row("redis.master_name", "name", "", R, "Sentinel mode: the master's name in the sentinels' configuration (`sentinel monitor <name> ...`).",
                       [](auto& c) -> auto& { return c.redis.master_name; },
                       text([](const std::string& s) { return s.find_first_of(" \t") == std::string::npos; },
                            "redis.master_name must be one word, the name given to `sentinel monitor`"));
  master.env = "SIDECACHE_REDIS_MASTER_NAME";
  t.push_back(master);
  t.push_back(row("redis.invalidation_replicas", "integer 0..16", "0", R,
                  "An invalidation is acknowledged only once this many replicas have it (`WAIT`, bounded by `redis.timeout`); otherwise it answers 503 and is retried. It then survives a failover. 0: acknowledged once the master has it.",
                  [](auto& c) -> auto& { return c.redis.invalidation_replicas; }, whole<unsigned>(0, 16)));
}

std::string redis_problem(const RedisConfig& r, std::string& where) {
  where = "redis.tls";
  bool any = !r.tls_ca_file.empty() || !r.tls_cert_file.empty() || !r.tls_key_file.empty() ||
             !r.tls_server_name.empty() || !r.tls_verify;
  if (!r.tls() && any) return "redis.tls settings are given but TLS is off: use a rediss:// URL or set redis.tls.enabled: true";
  if (r.tls() && r.is_unix)
    return "TLS over a unix socket is not supported: use a rediss://host:port URL, or turn TLS off for the socket";
  if (r.tls() && r.tls_cert_file.empty() != r.tls_key_file.empty())
    return r.tls_cert_file.empty() ? "redis.tls.key_file is set without redis.tls.cert_file: give both (the client certificate and its key)"
                                   : "redis.tls.cert_file is set without redis.tls.key_file: give both (the client certificate and its key)";
  where = "redis.mode";
  if (r.mode != RedisMode::cluster && !r.nodes.empty()) {
    where = "redis.nodes";
    return "redis.nodes lists the seed nodes of a Redis Cluster; set mode: cluster, or remove it";
  }
  if (r.mode == RedisMode::cluster) {
    if (r.is_unix) return "redis.mode cluster needs a redis:// or rediss:// URL of one node (host:port), not unix://";
    if (r.db != 0) {
      where = "redis.url";
      return "Redis Cluster has only database 0: drop the /" + std::to_string(r.db) + " from redis.url";
    }
  }
  if (r.mode == RedisMode::sentinel) {
    if (r.sentinels.empty()) return "redis.mode is sentinel but redis.sentinels is empty: list them, like sentinels: [\"10.0.0.1:26379\"]";
    if (r.master_name.empty()) return "redis.mode is sentinel but redis.master_name is not set: give the name the sentinels monitor, like master_name: mymaster";
    if (r.is_unix) return "redis.mode sentinel needs a redis:// or rediss:// URL (for its scheme, password and db), not unix://";
  } else {
    where = !r.sentinels.empty() ? "redis.sentinels" : "redis.master_name";
    if (!r.sentinels.empty() || !r.master_name.empty())
      return "redis.sentinels and redis.master_name are for redis.mode: sentinel; set mode: sentinel, or remove them";
  }
  return {};
}

}  // namespace sidecache::config::detail

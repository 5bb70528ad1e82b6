// The main file's Redis settings beyond the URL: TLS (a rediss:// URL or
// tls.enabled turns it on, file paths are relative to the main file) and
// Sentinel (mode, sentinels, master_name, invalidation_replicas); each
// mistake is refused with the file, the line and a fix.
#include <catch2/catch.hpp>

#include <map>

#include "loader_fixture.hpp"

using namespace sidecache::config;
using sidecache::test::TempDir;
using namespace sidecache::test::loader;

namespace {

const std::string kEntity = R"(name: org
scope: tenant
params: {}
result: row
sql: SELECT id FROM orgs WHERE id = :org_id
)";

// kMain with its redis: block (lines 7 to 9) replaced by `redis`.
std::string main_with(const std::string& redis) {
  std::string m = kMain;
  auto a = m.find("redis:\n"), b = m.find("postgres:\n");
  return m.substr(0, a) + redis + m.substr(b);
}

}  // namespace

TEST_CASE("redis TLS settings: rediss:// or tls.enabled turns TLS on, with files relative to the main file") {
  TempDir d;
  d.write("entities/org.yaml", kEntity);
  d.write("certs/ca.pem", "-----BEGIN CERTIFICATE-----\n");
  d.write("sidecache.yaml", main_with("redis:\n  url: rediss://:s3cret@redis.internal:6380/2\n  tls:\n    ca_file: certs/ca.pem\n"));
  Config c = load((d.path() / "sidecache.yaml").string(), no_env());
  CHECK(c.redis.tls());
  CHECK(c.redis.url_tls);
  CHECK(c.redis.host == "redis.internal");
  CHECK(c.redis.port == 6380);
  CHECK(c.redis.db == 2);
  CHECK(c.redis.password == "s3cret");
  CHECK(c.redis.tls_ca_file == (d.path() / "certs/ca.pem").string());
  CHECK(c.redis.tls_name() == "redis.internal");
  CHECK(c.redis.tls_verify);
  CHECK(mask_secrets(c.redis.url) == "rediss://:***@redis.internal:6380/2");

  d.write("sidecache.yaml", main_with("redis:\n  url: redis://10.0.0.5:6379/0\n  tls: { enabled: true, server_name: redis.internal }\n"));
  c = load((d.path() / "sidecache.yaml").string(), no_env());
  CHECK(c.redis.tls());
  CHECK_FALSE(c.redis.url_tls);
  CHECK(c.redis.tls_name() == "redis.internal");

  // The URL from the environment turns it on too.
  d.write("sidecache.yaml", main_with("redis:\n  url: redis://127.0.0.1:6379/0\n"));
  c = load((d.path() / "sidecache.yaml").string(), [](const std::string& k) -> std::optional<std::string> {
    if (k == "SIDECACHE_REDIS_URL") return "rediss://cache.example:6380/0";
    return std::nullopt;
  });
  CHECK(c.redis.tls());
  CHECK(c.redis.tls_name() == "cache.example");
}

TEST_CASE("redis TLS mistakes are refused with the file, the line and a fix") {
  TempDir d;
  d.write("entities/org.yaml", kEntity);
  d.write("ca.pem", "x");
  auto refused = [&](const std::string& redis, int line, const std::string& text) {
    d.write("sidecache.yaml", main_with(redis));
    auto ps = problems_of(d);
    INFO(dump(ps));
    CHECK(has_problem(ps, "sidecache.yaml", line, text));
  };
  refused("redis:\n  url: redis://127.0.0.1:6379/0\n  tls:\n    ca_file: ca.pem\n", 10,
          "redis.tls settings are given but TLS is off: use a rediss:// URL or set redis.tls.enabled: true");
  refused("redis:\n  url: rediss://127.0.0.1:6379/0\n  tls:\n    ca_file: missing.pem\n", 10,
          "redis.tls.ca_file '" + (d.path() / "missing.pem").string() + "' cannot be read");
  refused("redis:\n  url: rediss://127.0.0.1:6379/0\n  tls:\n    cert_file: ca.pem\n", 10,
          "redis.tls.cert_file is set without redis.tls.key_file: give both");
  refused("redis:\n  url: unix:///run/redis.sock\n  tls: { enabled: true }\n", 9, "TLS over a unix socket is not supported");
  refused("redis:\n  url: rediss://127.0.0.1:6379/0\n  tls: { server_name: \"a b\" }\n", 9,
          "redis.tls.server_name must be a host name");
  refused("redis:\n  url: redis://127.0.0.1:6379/0\n  tls: { verify: maybe }\n", 9, "redis.tls.verify");
  refused("redis:\n  url: redis://127.0.0.1:6379/0\n  tls: { ca: ca.pem }\n", 9, "ca");
}

TEST_CASE("redis sentinel settings: mode, sentinels, master_name and invalidation_replicas load") {
  TempDir d;
  d.write("entities/org.yaml", kEntity);
  d.write("sidecache.yaml", main_with("redis:\n  mode: sentinel\n  url: redis://:pw@mymaster/1\n  sentinels: [\"10.0.0.1:26379\", "
                                      "\"sentinel-2.internal:26380\"]\n  master_name: mymaster\n  invalidation_replicas: 1\n"));
  Config c = load((d.path() / "sidecache.yaml").string(), no_env());
  CHECK(c.redis.mode == RedisMode::sentinel);
  REQUIRE(c.redis.sentinels.size() == 2);
  CHECK(c.redis.sentinels[0] == HostPort{"10.0.0.1", 26379});
  CHECK(c.redis.sentinels[1] == HostPort{"sentinel-2.internal", 26380});
  CHECK(c.redis.master_name == "mymaster");
  CHECK(c.redis.invalidation_replicas == 1);
  CHECK(c.redis.password == "pw");
  CHECK(c.redis.db == 1);
}

TEST_CASE("redis sentinel and mode mistakes are refused with the file, the line and a fix") {
  TempDir d;
  d.write("entities/org.yaml", kEntity);
  auto refused = [&](const std::string& redis, int line, const std::string& text) {
    d.write("sidecache.yaml", main_with(redis));
    auto ps = problems_of(d);
    INFO(dump(ps));
    CHECK(has_problem(ps, "sidecache.yaml", line, text));
  };
  refused("redis:\n  mode: sharded\n", 8, "redis.mode must be standalone, sentinel or cluster");
  refused("redis:\n  mode: sentinel\n  master_name: mymaster\n", 8, "redis.sentinels is empty");
  refused("redis:\n  mode: sentinel\n  sentinels: [\"10.0.0.1:26379\"]\n", 8, "redis.master_name is not set");
  refused("redis:\n  sentinels: [\"10.0.0.1:26379\"]\n", 8, "set mode: sentinel, or remove them");
  refused("redis:\n  mode: sentinel\n  master_name: m\n  sentinels: [\"10.0.0.1\"]\n", 10, "'10.0.0.1' is not host:port");
  refused("redis:\n  invalidation_replicas: 17\n", 8, "redis.invalidation_replicas");
}

TEST_CASE("redis cluster settings: mode and nodes load, and cluster mistakes are refused with the file, the line and a fix") {
  TempDir d;
  d.write("entities/org.yaml", kEntity);
  d.write("sidecache.yaml", main_with("redis:\n  mode: cluster\n  url: rediss://:pw@node-1.internal:7000\n"
                                      "  nodes: [\"node-2.internal:7000\", \"10.0.0.3:7001\"]\n"));
  Config c = load((d.path() / "sidecache.yaml").string(), no_env());
  CHECK(c.redis.mode == RedisMode::cluster);
  REQUIRE(c.redis.nodes.size() == 2);
  CHECK(c.redis.nodes[0] == HostPort{"node-2.internal", 7000});
  CHECK(c.redis.nodes[1] == HostPort{"10.0.0.3", 7001});
  CHECK(c.redis.tls());
  CHECK(c.redis.port == 7000);

  // The same from the environment, as SIDECACHE_REDIS_URL is.
  d.write("sidecache.yaml", main_with("redis:\n  url: redis://10.0.0.1:7000\n"));
  std::map<std::string, std::string> vars{{"SIDECACHE_REDIS_MODE", "cluster"},
                                          {"SIDECACHE_REDIS_NODES", "10.0.0.2:7000, 10.0.0.3:7001"}};
  EnvLookup env = [&](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  c = load((d.path() / "sidecache.yaml").string(), env);
  CHECK(c.redis.mode == RedisMode::cluster);
  CHECK(c.redis.nodes == std::vector<HostPort>{{"10.0.0.2", 7000}, {"10.0.0.3", 7001}});

  auto refused = [&](const std::string& main, int line, const std::string& text) {
    d.write("sidecache.yaml", main_with(main));
    auto ps = problems_of(d);
    INFO(dump(ps));
    CHECK(has_problem(ps, "sidecache.yaml", line, text));
  };
  refused("redis:\n  nodes: [\"10.0.0.1:7000\"]\n", 8, "set mode: cluster, or remove it");
  refused("redis:\n  mode: cluster\n  url: redis://10.0.0.1:7000/2\n", 9, "Redis Cluster has only database 0");
  refused("redis:\n  mode: cluster\n  url: unix:///run/redis.sock\n", 8, "not unix://");
  refused("redis:\n  mode: cluster\n  nodes: [\"10.0.0.1\"]\n", 9, "'10.0.0.1' is not host:port");
  d.write("sidecache.yaml", [] {
    std::string m = main_with("redis:\n  mode: cluster\n");
    const std::string given = "key_prefix: \"sc:\"";
    return m.replace(m.find(given), given.size(), "key_prefix: \"a{\"");
  }());
  auto ps = problems_of(d);
  INFO(dump(ps));
  CHECK(has_problem(ps, "sidecache.yaml", 3, "key_prefix must not contain '{' or '}'"));
}

// The +switch-master message: only our master's switches count.
#include <catch2/catch.hpp>

#include "sidecache/redis/sentinel.hpp"

using sidecache::redis::sentinel_config;
using sidecache::redis::switch_of;

TEST_CASE("sentinel: a +switch-master message names the switch of our master only") {
  CHECK(switch_of("mymaster 127.0.0.1 6379 127.0.0.1 6380", "mymaster") == "127.0.0.1:6379 -> 127.0.0.1:6380");
  CHECK(switch_of("other 127.0.0.1 6379 127.0.0.1 6380", "mymaster").empty());
  CHECK(switch_of("mymaster 127.0.0.1 6379", "mymaster").empty());
  CHECK(switch_of("", "mymaster").empty());
  CHECK(switch_of("mymaster2 a 1 b 2", "mymaster").empty());
}

TEST_CASE("sentinel: a sentinel is reached with the master's TLS settings but not its password or database") {
  sidecache::config::RedisConfig r;
  r.url_tls = true;
  r.tls_ca_file = "/ca.pem";
  r.password = "secret";
  r.username = "app";
  r.db = 3;
  auto c = sentinel_config(r, {"10.0.0.9", 26379});
  CHECK(c.host == "10.0.0.9");
  CHECK(c.port == 26379);
  CHECK(c.tls());
  CHECK(c.tls_ca_file == "/ca.pem");
  CHECK(c.password.empty());
  CHECK(c.username.empty());
  CHECK(c.db == 0);
  CHECK(c.mode == sidecache::config::RedisMode::standalone);
}

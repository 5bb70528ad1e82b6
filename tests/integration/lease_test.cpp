// The cross-process fill lease: taken only when a fill follows, released on
// every path, so no read waits for a lease that no fill holds.
#include <catch2/catch.hpp>

#include <thread>

#include "harness.hpp"

using namespace sidecache::it;

namespace {
const std::string kOrg1 = "11111111-1111-1111-1111-111111111111";
}  // namespace

TEST_CASE("two processes reading one key after each DELETE leave no lease behind, so no read waits") {
  Services& s = Services::get();
  Daemon a;
  Daemon::Options same;
  same.key_prefix = a.prefix();
  Daemon b(same);
  std::string uid = s.sql("INSERT INTO users (id, org_id, email, display_name) VALUES (gen_random_uuid(), '" + kOrg1 +
                          "', 'lease-gone@test.example', 'lg') RETURNING id");
  std::string t = "/v1/entities/user?org_id=" + kOrg1 + "&user_id=" + uid;
  auto [rc, key] = run_command({sidecache_binary(), "key", "--config", a.config_path(), "user", "org_id=" + kOrg1,
                                "user_id=" + uid});
  REQUIRE(rc == 0);
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
  const std::string lease = a.prefix() + "ls:" + key.substr(a.prefix().size());
  int leftover = 0, failed = 0;
  for (int i = 0; i < 100; ++i) {
    REQUIRE(http_request(a.port(), "DELETE", t).status == 200);
    Response from_b;
    std::thread other([&] { from_b = b.get(t); });
    Response from_a = a.get(t);
    other.join();
    if (from_a.status != 200 || from_b.status != 200) ++failed;
    // Both answered: whichever filled has released its lease, and the other
    // took none (or gave back the one its look took when it found the value).
    if (s.redis_cli("EXISTS " + lease).rfind("1", 0) == 0 && ++leftover > 3) break;  // fails fast: each costs a wait
  }
  INFO(a.log() << b.log());
  CHECK(failed == 0);
  CHECK(leftover == 0);
  CHECK(a.log().find("for another process to fill") == std::string::npos);
  CHECK(b.log().find("for another process to fill") == std::string::npos);
}

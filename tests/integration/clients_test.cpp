// The client examples in docs/clients run against a real sidecache: the
// Python and Node ones are executed (Go's is not: no Go toolchain in the
// test dependencies; docs/clients.md says so).
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include "harness.hpp"

using namespace sidecache::it;
namespace json = boost::json;

namespace {
const std::string kOrg1 = "11111111-1111-1111-1111-111111111111";

// Runs `argv` with SIDECACHE_URL pointing at `d`; returns the lines of output.
std::pair<int, std::string> run_client(const Daemon& d, std::vector<std::string> argv) {
  argv.insert(argv.begin(), {"env", "SIDECACHE_URL=http://127.0.0.1:" + std::to_string(d.port())});
  return run_command(argv);
}

void check_output(const std::string& out, const std::string& name) {
  INFO(out);
  auto nl = out.find('\n');
  REQUIRE(nl != std::string::npos);
  auto first = json::parse(out.substr(0, nl)).as_object();
  CHECK(first.at("user").as_object().at("display_name").as_string() == name);
  CHECK(first.at("cache_status").as_string().rfind("sidecache;", 0) == 0);
  auto nl2 = out.find('\n', nl + 1);
  auto second = json::parse(out.substr(nl + 1, nl2 - nl - 1)).as_object();
  CHECK(second.at("rejected_param").as_string() == "user_id");
  // The batch call: the same user, and its bad second item named.
  REQUIRE(nl2 != std::string::npos);
  auto third = json::parse(out.substr(nl2 + 1, out.find('\n', nl2 + 1) - nl2 - 1)).as_object();
  CHECK(third.at("batch_user").as_object().at("display_name").as_string() == name);
  CHECK(third.at("batch_rejected_param").as_string() == "user_id");
}
}  // namespace

TEST_CASE("the Python and Node client examples read, batch-read, invalidate and report a bad parameter") {
  Services& s = Services::get();
  Daemon d;
  std::string uid = s.sql("INSERT INTO users (id, org_id, email, display_name) VALUES (gen_random_uuid(), '" + kOrg1 +
                          "', 'client@test.example', 'client') RETURNING id");
  std::string dir = source_dir() + "/docs/clients/";
  {
    auto [rc, out] = run_client(d, {"python3", dir + "python/sidecache_client.py", kOrg1, uid});
    CHECK(rc == 0);
    check_output(out, "client");
    CHECK(out.find(R"({"tag_invalidated": "tag"})") != std::string::npos);
  }
  s.sql("UPDATE users SET display_name = 'client-2' WHERE id = '" + uid + "'");
  {
    // The Python run invalidated the key after reading it: Node reads the new row.
    auto [rc, out] = run_client(d, {"node", dir + "node/sidecache-client.mjs", kOrg1, uid});
    CHECK(rc == 0);
    check_output(out, "client-2");
  }
}

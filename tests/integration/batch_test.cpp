// POST /v1/batch against real Redis and PostgreSQL: order, per-item
// answers, tenant isolation, one query per key under concurrency, and the
// refusals of a bad body.
#include <catch2/catch.hpp>

#include <boost/json.hpp>
#include <thread>

#include "harness.hpp"

using namespace sidecache::it;
namespace json = boost::json;

namespace {

std::string tenant(int t) {
  std::string n = std::to_string(t);
  return "00000000-0000-0000-0000-" + std::string(12 - n.size(), '0') + n;
}

std::string item(const std::string& entity, const std::vector<std::pair<std::string, std::string>>& params) {
  json::object p;
  for (const auto& [k, v] : params) p[k] = v;
  json::object o;
  o["entity"] = entity;
  o["params"] = std::move(p);
  return json::serialize(o);
}

Response batch(const Daemon& d, const std::vector<std::string>& items) {
  std::string body = R"({"requests":[)";
  for (std::size_t i = 0; i < items.size(); ++i) body += (i ? "," : "") + items[i];
  body += "]}";
  return http_request(d.port(), "POST", "/v1/batch", {"Content-Type: application/json"}, body);
}

}  // namespace

TEST_CASE("batch: 100 mixed items (hits, misses, 404s, bad params, two tenants) answer in order, and nothing crosses tenants", "[topology]") {
  Daemon d;
  const int ta = 31, tb = 32;
  // Warm half of tenant A's rows: those are hits.
  for (int k = 1; k <= 12; ++k) REQUIRE(d.get("/v1/entities/tenant_row?org_id=" + tenant(ta) + "&k=" + std::to_string(k)).status == 200);
  struct Want {
    int status;
    std::string org;  // for 200: the tenant the row must name
    int k = 0;
    std::string param;  // for 400: the parameter named
  };
  std::vector<std::string> items;
  std::vector<Want> want;
  for (int k = 1; k <= 25; ++k)
    for (int t : {ta, tb}) {
      items.push_back(item("tenant_row", {{"org_id", tenant(t)}, {"k", std::to_string(k)}}));
      want.push_back({200, tenant(t), k});
    }
  for (int i = 0; i < 20; ++i) {  // no such row: 404
    items.push_back(item("tenant_row", {{"org_id", tenant(i % 2 ? ta : tb)}, {"k", std::to_string(900 + i)}}));
    want.push_back({404, "", 0});
  }
  for (int i = 0; i < 15; ++i) {  // bad params, each named
    items.push_back(item("tenant_row", {{"org_id", tenant(ta)}, {"k", "x" + std::to_string(i)}}));
    want.push_back({400, "", 0, "k"});
  }
  for (int i = 0; i < 10; ++i) {
    items.push_back(item("tenant_row", {{"org_id", "not-a-uuid"}, {"k", "1"}}));
    want.push_back({400, "", 0, "org_id"});
  }
  for (int i = 0; i < 5; ++i) {
    items.push_back(R"({"entity":"no_such_entity","params":{}})");
    want.push_back({400, "", 0});
  }
  REQUIRE(items.size() == 100);
  for (int round = 0; round < 2; ++round) {  // cold then warm
    Response r = batch(d, items);
    REQUIRE(r.status == 200);
    json::value v = json::parse(r.body);
    const json::array& results = v.at("results").as_array();
    REQUIRE(results.size() == 100);
    int hits = 0;
    for (std::size_t i = 0; i < results.size(); ++i) {
      const json::object& got = results[i].as_object();
      INFO("item " << i << ": " << json::serialize(got));
      REQUIRE(got.at("status").to_number<int>() == want[i].status);
      if (want[i].status == 200) {
        const json::object& body = got.at("body").as_object();
        CHECK(body.at("org_id").as_string() == want[i].org);
        CHECK(body.at("k").to_number<int>() == want[i].k);
        std::string cache(got.at("cache").as_string());
        if (cache.rfind("hit", 0) == 0) ++hits;
      } else if (want[i].status == 404) {
        CHECK(got.at("error").at("error").as_string() == "not_found");
        CHECK(got.contains("cache"));
      } else {
        CHECK_FALSE(got.contains("cache"));
        if (!want[i].param.empty()) CHECK(got.at("error").at("param").as_string() == want[i].param);
      }
    }
    if (round == 0) CHECK(hits == 12);  // the warmed rows
    else CHECK(hits == 50);             // everything filled by the first batch
  }
}

TEST_CASE("batch: concurrent batches and GETs on overlapping cold keys make one query per key", "[topology]") {
  Services& s = Services::get();
  Daemon d;
  std::vector<std::string> users;
  for (int i = 0; i < 5; ++i)
    users.push_back(s.sql("INSERT INTO users (id, org_id, email, display_name) VALUES (gen_random_uuid(), "
                          "'11111111-1111-1111-1111-111111111111', 'batch" + std::to_string(i) +
                          "@test.example', 'batch') RETURNING id"));
  std::vector<std::string> items;
  for (const auto& u : users)
    items.push_back(item("slow_user", {{"org_id", "11111111-1111-1111-1111-111111111111"}, {"user_id", u}}));
  long long before = s.query_count("AS slow");
  auto answers = all_at_once(16, [&](int i) {
    if (i % 2) return batch(d, items);
    return d.get("/v1/entities/slow_user?org_id=11111111-1111-1111-1111-111111111111&user_id=" + users[static_cast<std::size_t>(i / 2) % users.size()]);
  });
  long long queries = s.query_count("AS slow") - before;
  for (const auto& a : answers) {
    REQUIRE(a.status == 200);
    if (a.body.find("results") == std::string::npos) continue;
    json::value v = json::parse(a.body);  // (a range-for over a temporary's member would dangle)
    for (const auto& r : v.at("results").as_array()) CHECK(r.at("status").to_number<int>() == 200);
  }
  CHECK(queries == 5);
}

TEST_CASE("batch: a body that is not a batch is a 400, too many items a 413, and a GET of /v1/batch a 405") {
  Daemon::Options o;
  o.extra_main = "http: { max_batch: 3 }\n";
  Daemon d(o);
  auto post = [&](const std::string& body) {
    return http_request(d.port(), "POST", "/v1/batch", {"Content-Type: application/json"}, body);
  };
  CHECK(post("not json").status == 400);
  CHECK(post("[]").status == 400);
  CHECK(post(R"({"requests":[],"extra":1})").body.find("unknown_field") != std::string::npos);
  CHECK(post(R"({"requests":[{"entity":"user","params":{},"x":1}]})").status == 400);
  CHECK(post(R"({"requests":[1]})").status == 400);
  CHECK(post(R"({"requests":{}})").status == 400);
  Response too_many = post(R"({"requests":[{"entity":"user"},{"entity":"user"},{"entity":"user"},{"entity":"user"}]})");
  CHECK(too_many.status == 413);
  CHECK(too_many.body.find("max_batch") != std::string::npos);
  Response empty = post(R"({"requests":[]})");
  CHECK(empty.status == 200);
  CHECK(empty.body == R"({"results":[]})");
  CHECK(http_request(d.port(), "GET", "/v1/batch").status == 405);
}

namespace {
// A user read with a batch form. pg_stat_statements merges queries that
// differ only in constants and aliases, so each counted entity here has a
// query shape of its own (md5(), upper()), and the alias names it.
const char* kBatchUser = R"(name: batch_user
scope: tenant
params:
  user_id: uuid
result: row
sql: SELECT id, email, md5(display_name) AS batch_user_name FROM users WHERE org_id = :org_id AND id = :user_id
batch:
  param: user_id
  sql: SELECT id, email, md5(display_name) AS batch_user_name FROM users WHERE org_id = :org_id AND id = ANY(:user_id)
  key_column: id
)";
const std::string kOrg = "11111111-1111-1111-1111-111111111111";
}  // namespace

TEST_CASE("batch form: 50 cold keys make one query, rows land under their own keys, a key without a row is a cached 404", "[topology]") {
  Services& s = Services::get();
  Daemon::Options o;
  o.extra_entities = {{"batch_user.yaml", kBatchUser}};
  Daemon d(o);
  std::vector<std::string> users;
  for (int i = 0; i < 45; ++i)
    users.push_back(s.sql("INSERT INTO users (id, org_id, email, display_name) VALUES (gen_random_uuid(), '" + kOrg +
                          "', 'bf" + std::to_string(i) + "@test.example', 'bf " + std::to_string(i) + "') RETURNING id"));
  std::vector<std::string> missing;
  for (int i = 0; i < 5; ++i) missing.push_back(s.sql("SELECT gen_random_uuid()"));
  std::vector<std::string> items;
  for (const auto& u : users) items.push_back(item("batch_user", {{"org_id", kOrg}, {"user_id", u}}));
  for (const auto& u : missing) items.push_back(item("batch_user", {{"org_id", kOrg}, {"user_id", u}}));
  const std::string single_marker = "AS batch_user_name FROM users WHERE org_id = $1 AND id = $2";
  long long single_before = s.query_count(single_marker), any_before = s.query_count("ANY($2)");
  Response r = batch(d, items);
  long long batch_queries = s.query_count("ANY($2)") - any_before;
  long long single_queries = s.query_count(single_marker) - single_before;
  REQUIRE(r.status == 200);
  INFO(r.body.substr(0, 600));
  CHECK(batch_queries == 1);
  CHECK(single_queries == 0);
  json::value v = json::parse(r.body);
  const json::array& res = v.at("results").as_array();
  REQUIRE(res.size() == 50);
  for (std::size_t i = 0; i < 45; ++i) {
    CHECK(res[i].at("status").to_number<int>() == 200);
    CHECK(res[i].at("body").at("id").as_string() == users[i]);
    CHECK(std::string(res[i].at("cache").as_string()).find("stored") != std::string::npos);
  }
  for (std::size_t i = 45; i < 50; ++i) CHECK(res[i].at("status").to_number<int>() == 404);
  // Each row is stored under the key a GET reads, with the very bytes a
  // single fill would have made.
  Response hit = d.get("/v1/entities/batch_user?org_id=" + kOrg + "&user_id=" + users[3]);
  CHECK(hit.status == 200);
  CHECK(hit.header("cache-status").rfind("sidecache; hit", 0) == 0);
  Daemon other(o);  // its own key prefix: a cold key, filled by one query
  Response single = other.get("/v1/entities/batch_user?org_id=" + kOrg + "&user_id=" + users[3]);
  CHECK(single.body == hit.body);
  // (and the marker above does count the single statement's runs)
  CHECK(s.query_count(single_marker) - single_before == 1);
  Response gone = d.get("/v1/entities/batch_user?org_id=" + kOrg + "&user_id=" + missing[0]);
  CHECK(gone.status == 404);
  CHECK(gone.header("cache-status").rfind("sidecache; hit", 0) == 0);
  // Warm now: another batch makes no query at all.
  long long any_again = s.query_count("ANY($2)");
  REQUIRE(batch(d, items).status == 200);
  CHECK(s.query_count("ANY($2)") == any_again);
}

TEST_CASE("batch form: concurrent batches and GETs on overlapping cold keys fetch each key's row once", "[topology]") {
  Services& s = Services::get();
  Daemon::Options o;
  o.extra_entities = {{"batch_slow.yaml", R"(name: batch_slow
scope: tenant
params:
  user_id: uuid
result: row
sql: SELECT id, email, upper(email) AS batch_slow_marker, (SELECT true FROM pg_sleep(0.2)) AS s FROM users WHERE org_id = :org_id AND id = :user_id
batch:
  param: user_id
  sql: SELECT id, email, upper(email) AS batch_slow_marker, (SELECT true FROM pg_sleep(0.2)) AS s FROM users WHERE org_id = :org_id AND id = ANY(:user_id)
  key_column: id
)"}};
  Daemon d(o);
  std::vector<std::string> users;
  for (int i = 0; i < 5; ++i)
    users.push_back(s.sql("INSERT INTO users (id, org_id, email, display_name) VALUES (gen_random_uuid(), '" + kOrg +
                          "', 'bs" + std::to_string(i) + "@test.example', 'bs') RETURNING id"));
  std::vector<std::string> items;
  for (const auto& u : users) items.push_back(item("batch_slow", {{"org_id", kOrg}, {"user_id", u}}));
  // Rows returned by the single and the batch statement together: each key's
  // row once means each key was fetched once.
  auto rows = [&] {
    return std::stoll(s.sql("SELECT coalesce(sum(rows), 0) FROM pg_stat_statements WHERE query LIKE '%AS batch_slow_marker%' "
                            "AND query NOT LIKE '%pg_stat_statements%'"));
  };
  long long before = rows();
  auto answers = all_at_once(16, [&](int i) {
    if (i % 2) return batch(d, items);
    return d.get("/v1/entities/batch_slow?org_id=" + kOrg + "&user_id=" + users[static_cast<std::size_t>(i / 2) % users.size()]);
  });
  for (const auto& a : answers) {
    REQUIRE(a.status == 200);
    if (a.body.find("results") == std::string::npos) continue;
    json::value v = json::parse(a.body);
    for (const auto& r : v.at("results").as_array()) CHECK(r.at("status").to_number<int>() == 200);
  }
  CHECK(rows() - before == 5);
}

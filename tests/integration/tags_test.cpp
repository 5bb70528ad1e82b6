// Tags against real Redis and PostgreSQL: the example entities project_tasks
// (a param tag) and task, and tag_task here (a column tag only, no rule of
// its own), flushed by an UPDATE through the triggers, and by the API; per
// tenant; in L1; in batches.
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include "harness.hpp"

using namespace sidecache::it;
namespace json = boost::json;

namespace {

// One task, tagged by its project, a column of the row. No invalidate_on
// rule of its own names its key: only the tag can flush it.
const char* kTagTask = R"(name: tag_task
scope: tenant
params:
  task_id: int
result: row
sql: SELECT id, project_id, title FROM tasks WHERE org_id = :org_id AND id = :task_id
tags: ["project:{row.project_id}"]
invalidate_on:
  - table: tasks
    tags: ["project:{project_id}"]
)";

std::string new_org(const std::string& name) {
  return Services::get().sql("INSERT INTO orgs (id, name) VALUES (gen_random_uuid(), '" + name + "') RETURNING id");
}
void new_task(const std::string& org, int id, int project, const std::string& title) {
  Services::get().sql("INSERT INTO tasks (id, org_id, project_id, title) VALUES (" + std::to_string(id) + ", '" + org + "', " +
                      std::to_string(project) + ", '" + title + "')");
}
std::string list(const std::string& org, int project) {
  return "/v1/entities/project_tasks?org_id=" + org + "&project_id=" + std::to_string(project);
}
std::string task(const char* entity, const std::string& org, int id) {
  return std::string("/v1/entities/") + entity + "?org_id=" + org + "&task_id=" + std::to_string(id);
}
std::string status_of(const Daemon& d, const std::string& target) { return d.get(target).header("cache-status"); }
bool hit(const std::string& cache_status) { return cache_status.rfind("sidecache; hit", 0) == 0; }
Response invalidate(const Daemon& d, const std::string& body) {
  return http_request(d.port(), "POST", "/v1/invalidate", {"Content-Type: application/json"}, body);
}
std::string ids_of(const Response& r) {
  std::string out;
  json::value v = json::parse(r.body);
  for (const auto& t : v.as_array()) out += std::to_string(t.at("id").to_number<long>()) + " ";
  return out;
}

}  // namespace

TEST_CASE("tags: an UPDATE that moves a task to another project flushes both projects' lists and the task itself (a column tag), and not another tenant's project 42", "[topology]") {
  std::string a = new_org("Tags A"), b = new_org("Tags B");
  new_task(a, 1, 42, "a1");
  new_task(a, 2, 42, "a2");
  new_task(a, 3, 7, "a3");
  new_task(a, 4, 9, "a4");
  new_task(b, 1, 42, "b1");
  Daemon::Options o;
  o.extra_entities = {{"tag_task.yaml", kTagTask}};
  Daemon d(o);
  Triggers triggers(d);
  const std::vector<std::string> targets = {list(a, 42), list(a, 7), list(a, 9), list(b, 42), task("tag_task", a, 1),
                                            task("tag_task", a, 4), task("tag_task", b, 1), task("task", a, 1)};
  for (const auto& t : targets) REQUIRE(d.get(t).status == 200);
  for (const auto& t : targets) REQUIRE(hit(status_of(d, t)));

  Services::get().sql("UPDATE tasks SET project_id = 7 WHERE org_id = '" + a + "' AND id = 1");
  // The notification travels; then both lists and the task read again.
  REQUIRE(eventually([&] { return ids_of(d.get(list(a, 42))) == "2 "; }));
  CHECK(ids_of(d.get(list(a, 7))) == "1 3 ");
  Response t1 = d.get(task("tag_task", a, 1));
  CHECK(json::parse(t1.body).at("project_id").to_number<int>() == 7);
  CHECK(json::parse(d.get(task("task", a, 1)).body).at("project_id").to_number<int>() == 7);
  // Untouched: another project of A, and B's project 42 and its task.
  CHECK(hit(status_of(d, list(a, 9))));
  CHECK(hit(status_of(d, task("tag_task", a, 4))));
  CHECK(hit(status_of(d, list(b, 42))));
  CHECK(hit(status_of(d, task("tag_task", b, 1))));
  CHECK(ids_of(d.get(list(b, 42))) == "1 ");

  // A title change (no project change) flushes by the task's own project.
  REQUIRE(hit(status_of(d, task("tag_task", a, 1))));
  Services::get().sql("UPDATE tasks SET title = 'a1 renamed' WHERE org_id = '" + a + "' AND id = 1");
  REQUIRE(eventually([&] {
    return json::parse(d.get(task("tag_task", a, 1)).body).at("title").as_string() == "a1 renamed";
  }));
  CHECK(hit(status_of(d, task("tag_task", b, 1))));
}

TEST_CASE("tags: POST /v1/invalidate with a tenant and a tag flushes that tenant's values that carry it, param and column tags, in L1, in batches and in another process", "[topology]") {
  std::string a = new_org("Tags API A"), b = new_org("Tags API B");
  new_task(a, 1, 42, "v0");
  new_task(b, 1, 42, "v0");
  Daemon::Options o;
  o.extra_entities = {{"tag_task.yaml", kTagTask}};
  o.extra_main = "l1: { max_bytes: 8MiB, ttl: 60s }\n";
  Daemon d(o);
  o.key_prefix = d.prefix();  // a second pod on the same key space
  Daemon other(o);
  const std::string batch = R"({"requests":[{"entity":"tag_task","params":{"org_id":")" + a +
                            R"(","task_id":1}},{"entity":"project_tasks","params":{"org_id":")" + a +
                            R"(","project_id":42}},{"entity":"tag_task","params":{"org_id":")" + b + R"(","task_id":1}}]})";
  auto read_batch = [&](const Daemon& via) {
    Response r = http_request(via.port(), "POST", "/v1/batch", {"Content-Type: application/json"}, batch);
    REQUIRE(r.status == 200);
    json::value v = json::parse(r.body);
    return json::array(v.at("results").as_array());
  };
  for (const Daemon* x : {&d, &other}) {
    for (int i = 0; i < 2; ++i) {
      REQUIRE(d.get(task("tag_task", a, 1)).status == 200);
      REQUIRE(x->get(task("tag_task", a, 1)).status == 200);
      REQUIRE(x->get(list(a, 42)).status == 200);
      REQUIRE(x->get(task("tag_task", b, 1)).status == 200);
    }
    CHECK(status_of(*x, task("tag_task", a, 1)) == "sidecache; hit; detail=l1");
    CHECK(status_of(*x, list(a, 42)) == "sidecache; hit; detail=l1");
  }
  // A write the triggers do not see (none are installed here): the cache
  // still serves v0 until the application invalidates the tag.
  Services::get().sql("UPDATE tasks SET title = 'v1' WHERE id = 1 AND org_id IN ('" + a + "', '" + b + "')");
  CHECK(json::parse(d.get(task("tag_task", a, 1)).body).at("title").as_string() == "v0");
  CHECK(read_batch(d).at(0).at("body").at("title").as_string() == "v0");

  Response inv = invalidate(d, R"({"tenant":")" + a + R"(","tag":"project:42"})");
  REQUIRE(inv.status == 200);
  json::value iv = json::parse(inv.body);
  CHECK(iv.at("invalidated").as_string() == "tag");
  CHECK(iv.at("tag").as_string() == "project:42");
  CHECK(iv.at("tenant").as_string() == a);

  // The invalidating process: at once, L1 included.
  CHECK(json::parse(d.get(task("tag_task", a, 1)).body).at("title").as_string() == "v1");
  CHECK(json::parse(d.get(list(a, 42)).body).at(0).at("title").as_string() == "v1");
  // The other process: once the message arrived.
  CHECK(eventually([&] {
    return json::parse(other.get(task("tag_task", a, 1)).body).at("title").as_string() == "v1";
  }));
  CHECK(json::parse(other.get(list(a, 42)).body).at(0).at("title").as_string() == "v1");
  // In a batch: A's items are new, B's (not invalidated) still v0, a hit.
  auto items = read_batch(d);
  CHECK(items.at(0).at("body").at("title").as_string() == "v1");
  CHECK(items.at(1).at("body").at(0).at("title").as_string() == "v1");
  CHECK(items.at(2).at("body").at("title").as_string() == "v0");
  CHECK(items.at(2).at("cache").as_string().subview().substr(0, 3) == "hit");
  CHECK(json::parse(other.get(task("tag_task", b, 1)).body).at("title").as_string() == "v0");

  // Refusals name the field.
  auto field_of = [](const Response& r) { return std::string(json::parse(r.body).at("field").as_string()); };
  Response no_tenant = invalidate(d, R"({"tag":"project:42"})");
  CHECK(no_tenant.status == 400);
  CHECK(field_of(no_tenant) == "tenant");
  Response with_entity = invalidate(d, R"({"tenant":")" + a + R"(","tag":"project:42","entity":"task"})");
  CHECK(with_entity.status == 400);
  CHECK(field_of(with_entity) == "entity");
  Response empty = invalidate(d, R"({"tenant":")" + a + R"(","tag":""})");
  CHECK(empty.status == 400);
  CHECK(field_of(empty) == "tag");
  Response number = invalidate(d, R"({"tenant":")" + a + R"(","tag":42})");
  CHECK(number.status == 400);
  CHECK(field_of(number) == "tag");
  Response bad_tenant = invalidate(d, R"({"tenant":"nope","tag":"project:42"})");
  CHECK(bad_tenant.status == 400);
  CHECK(json::parse(bad_tenant.body).at("param").as_string() == "org_id");
}

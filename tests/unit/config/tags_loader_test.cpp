// An entity file's tags and its invalidate_on rules' tags: what loads, and
// how each mistake is refused (file, line, a fix).
#include <catch2/catch.hpp>

#include "../temp_dir.hpp"
#include "sidecache/config/config.hpp"

using namespace sidecache::config;
using sidecache::test::TempDir;

namespace {

const char* kMain = R"(listen: 127.0.0.1:7070
key_prefix: "sc:"
tenant: { param: org_id, type: uuid }
redis: { url: "redis://127.0.0.1:6379/0" }
postgres: { dsn: "host=127.0.0.1 port=5432 dbname=app user=app" }
entities_dir: entities
)";

const std::string kTask = R"(name: task
scope: tenant
params:
  task_id: int
result: row
sql: SELECT id, project_id FROM tasks WHERE org_id = :org_id AND id = :task_id
)";

std::vector<Problem> problems_of(const TempDir& d) {
  try {
    load((d.path() / "sidecache.yaml").string(), [](const std::string&) { return std::optional<std::string>(); });
    return {};
  } catch (const LoadError& e) {
    return e.problems();
  }
}

}  // namespace

TEST_CASE("tags load from an entity file and its invalidate_on rules, and take part in the key's shape") {
  TempDir d;
  d.write("sidecache.yaml", kMain);
  d.write("entities/task.yaml", kTask);
  auto env = [](const std::string&) { return std::optional<std::string>(); };
  std::string untagged = load((d.path() / "sidecache.yaml").string(), env).find_entity("task")->shape_hash;
  d.write("entities/task.yaml", kTask + R"(tags:
  - "task:{task_id}"
  - "project:{row.project_id}"
invalidate_on:
  - table: tasks
    tags: ["project:{project_id}"]
)");
  Config c = load((d.path() / "sidecache.yaml").string(), env);
  const Entity* e = c.find_entity("task");
  REQUIRE(e->tags.size() == 2);
  CHECK(e->column_tags());
  CHECK(e->invalidate_on.at(0).tags.at(0).parts.at(1).column == "project_id");
  // Values stored under other tags are not read as these.
  CHECK(e->shape_hash != untagged);
}

TEST_CASE("tag mistakes are refused with the file, the line and a fix") {
  TempDir d;
  d.write("sidecache.yaml", kMain);
  auto refused = [&](const std::string& entity, int line, const std::string& text) {
    d.write("entities/task.yaml", entity);
    auto ps = problems_of(d);
    std::string all;
    bool found = false;
    for (const auto& p : ps) {
      all += p.to_string() + "\n";
      if (p.file.find("task.yaml") != std::string::npos && p.line == line && p.message.find(text) != std::string::npos)
        found = true;
    }
    INFO(all);
    CHECK(found);
  };
  refused(kTask + "tags:\n  - \"x:{nope}\"\n", 8, "{nope} is not a param of this entity");
  refused(kTask + "tags:\n  - \"ok\"\n  - \"x:{task_id\"\n", 9, "'{' without its '}'");
  refused(kTask + "tags: \"project:{task_id}\"\n", 7, "tags must be a list");
  refused(kTask + "tags: [a, a]\n", 7, "is listed twice");
  refused(kTask + "tags: [a, b, c, d, e, f, g, h, i]\n", 7, "at most 8 tags");
  std::string rows = kTask;
  rows.replace(rows.find("result: row"), 11, "result: rows");
  refused(rows + "tags: [\"p:{row.project_id}\"]\n", 7, "only a 'result: row' entity has");
  refused(kTask + "invalidate_on:\n  - table: tasks\n    params: { task_id: id }\n    tags: [\"p:{project_id}\"]\n", 10,
          "either params (one key) or tags, not both");
  refused(kTask + "invalidate_on:\n  - table: tasks\n    tags: [\"p:{Project}\"]\n", 9, "not a column name");
}

// An entity file's tags and its invalidate_on rules' tags: what loads, and
// how each mistake is refused (file, line, a fix).
#include <catch2/catch.hpp>

#include "loader_fixture.hpp"

using namespace sidecache::config;
using sidecache::test::TempDir;
using namespace sidecache::test::loader;

namespace {

const std::string kTask = R"(name: task
scope: tenant
params:
  task_id: int
result: row
sql: SELECT id, project_id FROM tasks WHERE org_id = :org_id AND id = :task_id
)";

}  // namespace

TEST_CASE("tags load from an entity file and its invalidate_on rules, and take part in the key's shape") {
  TempDir d;
  d.write("sidecache.yaml", kMain);
  d.write("entities/task.yaml", kTask);
  std::string untagged = load((d.path() / "sidecache.yaml").string(), no_env()).find_entity("task")->shape_hash;
  d.write("entities/task.yaml", kTask + R"(tags:
  - "task:{task_id}"
  - "project:{row.project_id}"
invalidate_on:
  - table: tasks
    tags: ["project:{project_id}"]
)");
  Config c = load((d.path() / "sidecache.yaml").string(), no_env());
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
    INFO(dump(ps));
    CHECK(has_problem(ps, "task.yaml", line, text));
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

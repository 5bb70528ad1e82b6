#include <catch2/catch.hpp>

#include "../temp_dir.hpp"
#include "sidecache/config/config.hpp"
#include "loader_fixture.hpp"

using namespace sidecache::config;
using sidecache::test::TempDir;
using namespace sidecache::test::loader;

namespace {

const char* kUser = R"(name: user
scope: tenant
params:
  user_id: uuid
result: row
sql: |
  SELECT id, email
  FROM users WHERE org_id = :org_id AND id = :user_id
ttl: 15m
negative_ttl: 30s
)";

}  // namespace

TEST_CASE("the documented example loads") {
  TempDir d;
  d.write("sidecache.yaml", kMain);
  d.write("entities/user.yaml", kUser);
  Config c = load((d.path() / "sidecache.yaml").string(), no_env());
  CHECK(c.listen.host == "127.0.0.1");
  CHECK(c.listen.port == 7070);
  CHECK(c.workers == 2);
  CHECK(c.redis.port == 6379);
  CHECK(c.redis.timeout == std::chrono::milliseconds(50));
  CHECK(c.postgres.pool_size == 8);
  CHECK(c.postgres.statement_timeout == std::chrono::seconds(2));
  CHECK(c.defaults.ttl_jitter == Approx(0.10));
  REQUIRE(c.entities.size() == 1);
  const Entity& e = c.entities[0];
  CHECK(e.name == "user");
  CHECK(e.ttl == std::chrono::minutes(15));
  REQUIRE(e.params.size() == 2);
  CHECK(e.params[0].name == "org_id");
  CHECK(e.params[0].is_tenant);
  CHECK(e.params[1].name == "user_id");
  CHECK(e.query.find("row_to_json") != std::string::npos);
  CHECK(e.query.find("org_id = $1 AND id = $2") != std::string::npos);
  CHECK(e.bind == std::vector<std::size_t>{0, 1});
  CHECK(e.shape_hash.size() == 8);
}

TEST_CASE("the repository's example config loads") {
  Config c = load(SIDECACHE_SOURCE_DIR "/config/examples/sidecache.yaml", no_env());
  CHECK(c.entities.size() == 7);
  const Entity* flags = c.find_entity("feature_flags");
  REQUIRE(flags);
  CHECK(flags->scope == Scope::global);
  CHECK(flags->params.empty());
  // The tag examples: a param tag on the list, a column tag on the task.
  const Entity* list = c.find_entity("project_tasks");
  const Entity* task = c.find_entity("task");
  REQUIRE(list);
  REQUIRE(task);
  CHECK(list->tags.at(0).text == "project:{project_id}");
  CHECK(!list->column_tags());
  CHECK(task->column_tags());
  CHECK(task->invalidate_on.at(1).tags.at(0).text == "project:{project_id}");
}

TEST_CASE("environment variables override the main file") {
  TempDir d;
  d.write("sidecache.yaml", kMain);
  d.write("entities/user.yaml", kUser);
  EnvLookup env = [](const std::string& k) -> std::optional<std::string> {
    if (k == "SIDECACHE_LISTEN") return "unix:/tmp/sc.sock";
    if (k == "SIDECACHE_REDIS_URL") return "redis://:s3cret@10.0.0.5:6380/3";
    if (k == "SIDECACHE_POSTGRES_DSN") return "postgresql://app:pw@db/app";
    return std::nullopt;
  };
  Config c = load((d.path() / "sidecache.yaml").string(), env);
  CHECK(c.listen.is_unix);
  CHECK(c.listen.path == "/tmp/sc.sock");
  CHECK(c.redis.host == "10.0.0.5");
  CHECK(c.redis.port == 6380);
  CHECK(c.redis.db == 3);
  CHECK(c.redis.password == "s3cret");
  CHECK(c.redis.timeout == std::chrono::milliseconds(50));  // kept from the file
  CHECK(c.postgres.dsn == "postgresql://app:pw@db/app");
}

TEST_CASE("an unknown key is refused with file, line and a suggestion") {
  TempDir d;
  d.write("sidecache.yaml", std::string(kMain) + "worker_count: 4\n");
  d.write("entities/user.yaml", std::string(kUser) + "tll: 5m\n");
  auto ps = problems_of(d);
  INFO(dump(ps));
  CHECK(has_problem(ps, "sidecache.yaml", 17, "unknown key 'worker_count'"));
  CHECK(has_problem(ps, "user.yaml", 11, "did you mean 'ttl'?"));
}

TEST_CASE("a wrong type is refused") {
  TempDir d;
  d.write("sidecache.yaml", R"(workers: many
postgres: { dsn: "x", pool_size: [1] }
redis: { url: "http://x", timeout: 5 }
tenant: { param: org_id, type: string }
entities_dir: entities
)");
  d.write("entities/user.yaml", R"(name: user
params:
  user_id: number
result: one
scope: sometimes
sql: SELECT 1 WHERE :org_id = :user_id
ttl: soon
)");
  auto ps = problems_of(d);
  INFO(dump(ps));
  CHECK(has_problem(ps, "sidecache.yaml", 1, "workers: 'many' is not a whole number"));
  CHECK(has_problem(ps, "sidecache.yaml", 2, "postgres.pool_size must be a single value"));
  CHECK(has_problem(ps, "sidecache.yaml", 3, "must start with redis://"));
  CHECK(has_problem(ps, "sidecache.yaml", 3, "redis.timeout: '5' is not a duration"));
  CHECK(has_problem(ps, "sidecache.yaml", 4, "unknown type 'string'"));
  CHECK(has_problem(ps, "user.yaml", 3, "unknown type 'number'"));
  CHECK(has_problem(ps, "user.yaml", 4, "result 'one' is not valid"));
  CHECK(has_problem(ps, "user.yaml", 5, "scope 'sometimes' is not valid"));
  CHECK(has_problem(ps, "user.yaml", 7, "ttl: 'soon' is not a duration"));
}

TEST_CASE("a duplicate entity name is refused, naming both files") {
  TempDir d;
  d.write("sidecache.yaml", kMain);
  d.write("entities/a.yaml", kUser);
  d.write("entities/b.yaml", kUser);
  auto ps = problems_of(d);
  INFO(dump(ps));
  REQUIRE(ps.size() == 1);
  CHECK(has_problem(ps, "b.yaml", 1, "already used by"));
  CHECK(ps[0].message.find("a.yaml:1") != std::string::npos);
}

TEST_CASE("a param used in the SQL but not declared is refused at its line") {
  TempDir d;
  d.write("sidecache.yaml", kMain);
  d.write("entities/user.yaml", R"(name: user
params:
  user_id: uuid
sql: |
  SELECT id FROM users
  WHERE org_id = :org_id
    AND id = :user_id
    AND role = :role
)");
  auto ps = problems_of(d);
  INFO(dump(ps));
  CHECK(has_problem(ps, "user.yaml", 8, "the SQL uses :role but it is not declared"));
}

TEST_CASE("a param declared but not used is refused at its declaration") {
  TempDir d;
  d.write("sidecache.yaml", kMain);
  d.write("entities/user.yaml", R"(name: user
params:
  user_id: uuid
  team_id: int
sql: SELECT id FROM users WHERE org_id = :org_id AND id = :user_id
)");
  auto ps = problems_of(d);
  INFO(dump(ps));
  CHECK(has_problem(ps, "user.yaml", 4, "param 'team_id' is declared but the SQL never uses :team_id"));
}

TEST_CASE("a tenant-scoped entity whose SQL ignores the tenant is refused") {
  TempDir d;
  d.write("sidecache.yaml", kMain);
  d.write("entities/user.yaml", R"(name: user
params: { user_id: uuid }
sql: SELECT id FROM users WHERE id = :user_id
)");
  auto ps = problems_of(d);
  INFO(dump(ps));
  CHECK(has_problem(ps, "user.yaml", 3, "must filter by the tenant: the SQL must use :org_id"));
}

TEST_CASE("a global entity that declares the tenant param is refused") {
  TempDir d;
  d.write("sidecache.yaml", kMain);
  d.write("entities/flags.yaml", R"(name: flags
scope: global
params:
  org_id: uuid
result: rows
sql: SELECT * FROM feature_flags WHERE :org_id IS NOT NULL
)");
  auto ps = problems_of(d);
  INFO(dump(ps));
  CHECK(has_problem(ps, "flags.yaml", 4, "a global entity must not declare the tenant param 'org_id'"));
}

TEST_CASE("a ttl of zero or less is refused") {
  TempDir d;
  d.write("sidecache.yaml", std::string(kMain));
  d.write("entities/user.yaml", std::string(kUser).replace(std::string(kUser).find("ttl: 15m"), 8, "ttl: 0s"));
  d.write("entities/other.yaml", R"(name: other
scope: global
result: rows
sql: SELECT 1 AS one
ttl: -5s
)");
  auto ps = problems_of(d);
  INFO(dump(ps));
  CHECK(has_problem(ps, "user.yaml", 9, "ttl must be greater than zero"));
  CHECK(has_problem(ps, "other.yaml", 5, "ttl: '-5s' is not a duration"));
}

TEST_CASE("an unreadable entities_dir is refused") {
  TempDir d;
  d.write("sidecache.yaml", std::string(kMain).replace(std::string(kMain).find("entities_dir: entities"), 22,
                                                       "entities_dir: no/such/dir"));
  auto ps = problems_of(d);
  INFO(dump(ps));
  CHECK(has_problem(ps, "sidecache.yaml", 15, "cannot be read"));
}

TEST_CASE("every problem is reported in one pass") {
  TempDir d;
  d.write("sidecache.yaml", std::string(kMain) + "bogus: 1\n");
  d.write("entities/a.yaml", "name: a\nsql: SELECT 1 WHERE :org_id = :x\n");
  d.write("entities/b.yaml", "name: b\nscope: global\nsql: SELECT 1\nttl: 0s\n");
  d.write("entities/c.yaml", "name: [broken\n");
  auto ps = problems_of(d);
  INFO(dump(ps));
  CHECK(ps.size() == 4);
  CHECK(has_problem(ps, "sidecache.yaml", 17, "unknown key 'bogus'"));
  CHECK(has_problem(ps, "a.yaml", 2, "the SQL uses :x"));
  CHECK(has_problem(ps, "b.yaml", 4, "ttl must be greater than zero"));
  CHECK(has_problem(ps, "c.yaml", 0, "YAML syntax error"));
}

TEST_CASE("listen addresses parse") {
  std::string why;
  auto a = parse_listen("127.0.0.1:7070", why);
  REQUIRE(a);
  CHECK(a->port == 7070);
  auto b = parse_listen("[::1]:8080", why);
  REQUIRE(b);
  CHECK(b->host == "::1");
  auto c = parse_listen("unix:/run/sc.sock", why);
  REQUIRE(c);
  CHECK(c->is_unix);
  CHECK_FALSE(parse_listen("7070", why));
  CHECK_FALSE(parse_listen("host:99999", why));
  CHECK_FALSE(parse_listen("unix:relative.sock", why));
}

TEST_CASE("secrets are masked for logs") {
  CHECK(mask_secrets("redis://:s3cret@host:6379/0") == "redis://:***@host:6379/0");
  CHECK(mask_secrets("redis://user:s3cret@host:6379/0") == "redis://user:***@host:6379/0");
  CHECK(mask_secrets("host=db password=hunter2 user=app") == "host=db password=*** user=app");
  CHECK(mask_secrets("host=db password = 'a b c' user=app") == "host=db password = *** user=app");
  CHECK(mask_secrets("postgresql://app:pw@db/app") == "postgresql://app:***@db/app");
  CHECK(mask_secrets("host=db user=app") == "host=db user=app");
}

TEST_CASE("invalidate_on loads, and its mistakes are refused at their lines") {
  TempDir d;
  d.write("sidecache.yaml", std::string(kMain) + "invalidation: { channel: my_channel }\n");
  d.write("entities/user.yaml", std::string(kUser) + R"(invalidate_on:
  - table: users
    params: { user_id: id }
  - table: app.memberships
    tenant_column: org
)");
  Config c = load((d.path() / "sidecache.yaml").string(), no_env());
  CHECK(c.invalidation.channel == "my_channel");
  REQUIRE(c.entities[0].invalidate_on.size() == 2);
  CHECK(c.entities[0].invalidate_on[0].tenant_column == "org_id");
  CHECK(c.entities[0].invalidate_on[0].params == std::vector<std::pair<std::string, std::string>>{{"user_id", "id"}});
  CHECK(c.entities[0].invalidate_on[1].table == "app.memberships");
  CHECK(c.entities[0].invalidate_on[1].tenant_column == "org");
  CHECK(c.listens());

  TempDir bad;
  bad.write("sidecache.yaml", kMain);
  bad.write("entities/user.yaml", std::string(kUser) + R"(invalidate_on:
  - table: users
    params: { team_id: id, user_id: "id; DROP TABLE x", org_id: org }
  - params: {}
  - table: "Users"
    colour: red
)");
  bad.write("entities/flags.yaml", R"(name: flags
scope: global
result: rows
sql: SELECT 1 AS one
invalidate_on:
  - table: feature_flags
    tenant_column: org_id
)");
  auto ps = problems_of(bad);
  INFO(dump(ps));
  CHECK(has_problem(ps, "user.yaml", 13, "maps 'team_id', which is not a param of this entity"));
  CHECK(has_problem(ps, "user.yaml", 13, "must be a plain column name"));
  CHECK(has_problem(ps, "user.yaml", 13, "the tenant comes from tenant_column"));
  CHECK(has_problem(ps, "user.yaml", 14, "needs 'table'"));
  CHECK(has_problem(ps, "user.yaml", 15, "must be a plain lower-case name"));
  CHECK(has_problem(ps, "user.yaml", 16, "unknown key 'colour'"));
  CHECK(has_problem(ps, "flags.yaml", 7, "a global entity has no tenant"));
}

TEST_CASE("l1: sizes, the default l1_ttl and per-entity overrides") {
  TempDir d;
  d.write("sidecache.yaml", std::string(kMain) + "l1: { max_bytes: 64MiB, ttl: 3s }\n");
  d.write("entities/user.yaml", kUser);
  d.write("entities/user_fast.yaml", std::string(kUser).replace(6, 4, "fast") + "l1_ttl: 500ms\n");
  d.write("entities/user_off.yaml", std::string(kUser).replace(6, 4, "offl") + "l1_ttl: 0s\n");
  Config c = load((d.path() / "sidecache.yaml").string(), no_env());
  CHECK(c.l1.enabled());
  CHECK(c.l1.max_bytes == 64u << 20);
  CHECK(c.find_entity("user")->l1_ttl == std::chrono::seconds(3));
  CHECK(c.find_entity("fast")->l1_ttl == std::chrono::milliseconds(500));
  CHECK(c.find_entity("offl")->l1_ttl.count() == 0);

  CHECK(parse_bytes("512KiB") == 512u << 10);
  CHECK(parse_bytes("1GiB") == std::size_t{1} << 30);
  CHECK(parse_bytes("10MB") == 10000000u);
  CHECK(parse_bytes("0") == 0u);
  CHECK_FALSE(parse_bytes("lots"));
  CHECK_FALSE(parse_bytes("12 parsecs"));
  CHECK_FALSE(parse_bytes("-1MiB"));
}

TEST_CASE("l1: off by default, a bad size or a long ttl is refused with the line") {
  TempDir d;
  d.write("sidecache.yaml", kMain);
  d.write("entities/user.yaml", kUser);
  CHECK_FALSE(load((d.path() / "sidecache.yaml").string(), no_env()).l1.enabled());

  d.write("sidecache.yaml", std::string(kMain) + "l1:\n  max_bytes: huge\n  ttl: 10m\n");
  d.write("entities/user.yaml", std::string(kUser) + "l1_ttl: 5m\n");
  auto ps = problems_of(d);
  INFO(dump(ps));
  CHECK(has_problem(ps, "sidecache.yaml", 18, "l1.max_bytes: 'huge' is not a size"));
  CHECK(has_problem(ps, "sidecache.yaml", 19, "l1.ttl is at most 1m"));
  CHECK(has_problem(ps, "user.yaml", 11, "l1_ttl is at most 1m"));
}

TEST_CASE("a string max_len the request target cannot carry loads with a warning naming the line") {
  TempDir d;
  d.write("sidecache.yaml", kMain);
  d.write("entities/note.yaml",
          "name: note\nscope: global\nparams:\n  body: { type: string, max_len: 5000 }\n  tag: { type: string, max_len: 100 }\n"
          "sql: SELECT :body AS b, :tag AS t\n");
  Config cfg = load((d.path() / "sidecache.yaml").string(), no_env());
  REQUIRE(cfg.warnings.size() == 1);
  CHECK(cfg.warnings[0].file.find("note.yaml") != std::string::npos);
  CHECK(cfg.warnings[0].line == 4);
  CHECK(cfg.warnings[0].message.find("max_len 5000 cannot be reached") != std::string::npos);
  CHECK(cfg.warnings[0].message.find("http.max_target_bytes") != std::string::npos);
}

TEST_CASE("tenants, metrics and audit: defaults, an entity's own fill cap, and mistakes refused at their lines") {
  TempDir d;
  d.write("sidecache.yaml", kMain);
  d.write("entities/user.yaml", kUser);
  Config plain = load((d.path() / "sidecache.yaml").string(), no_env());
  CHECK(plain.tenants.fair_queue);
  CHECK(plain.tenants.max_concurrent_fills == 0);
  CHECK(plain.tenants.max_queued_fills == 0);
  CHECK(plain.l1.max_tenant_share == 1.0);
  CHECK(plain.metrics.top_tenants == 10);
  CHECK_FALSE(plain.audit.enabled());

  d.write("sidecache.yaml", std::string(kMain) +
                                "tenants: { max_concurrent_fills: 4, max_queued_fills: 64 }\n"
                                "l1: { max_bytes: 64MiB, max_tenant_share: 25% }\nmetrics: { top_tenants: 3 }\n"
                                "audit: { sample: 0.001, max_per_second: 50, grace: 500ms }\n");
  d.write("entities/wide.yaml", std::string(kUser).replace(6, 4, "wide") + "tenants: { max_concurrent_fills: 8 }\n");
  Config c = load((d.path() / "sidecache.yaml").string(), no_env());
  CHECK(c.find_entity("user")->tenant_max_concurrent_fills == 4);
  CHECK(c.find_entity("wide")->tenant_max_concurrent_fills == 8);
  CHECK(c.tenants.max_queued_fills == 64);
  CHECK(c.l1.max_tenant_share == Approx(0.25));
  CHECK(c.metrics.top_tenants == 3);
  CHECK(c.audit.sample == Approx(0.001));
  CHECK(c.audit.max_per_second == 50);
  CHECK(c.audit.grace == std::chrono::milliseconds(500));

  d.write("sidecache.yaml", std::string(kMain) + "tenants:\n  max_concurent_fills: 4\nl1: { max_bytes: 1MiB, max_tenant_share: 0% }\naudit:\n  sample: lots\n");
  d.write("entities/wide.yaml", std::string(kUser).replace(6, 4, "wide") + "tenants: { max_concurrent_fills: -1 }\n");
  auto ps = problems_of(d);
  INFO(dump(ps));
  CHECK(has_problem(ps, "sidecache.yaml", 18, "did you mean 'max_concurrent_fills'"));
  CHECK(has_problem(ps, "sidecache.yaml", 19, "l1.max_tenant_share must be above 0%"));
  CHECK(has_problem(ps, "sidecache.yaml", 21, "audit.sample"));
  CHECK(has_problem(ps, "wide.yaml", 11, "tenants.max_concurrent_fills"));
}

TEST_CASE("batch form: loads with its array param, and every mistake is refused with a fix") {
  TempDir d;
  d.write("sidecache.yaml", kMain);
  const std::string base = R"(name: user
scope: tenant
params:
  user_id: uuid
result: row
sql: SELECT id, email FROM users WHERE org_id = :org_id AND id = :user_id
)";
  d.write("entities/user.yaml", base + R"(batch:
  param: user_id
  sql: SELECT id, email FROM users WHERE org_id = :org_id AND id = ANY(:user_id)
  key_column: id
)");
  Config c = load((d.path() / "sidecache.yaml").string(), no_env());
  const Entity* e = c.find_entity("user");
  REQUIRE(e->batch);
  CHECK(e->batch->param == 1);
  CHECK(e->batch->key_column == "id");
  CHECK(e->batch->bind == std::vector<std::size_t>{0, 1});
  CHECK(e->batch->query.find("row_to_json(_sidecache_row)::text") != std::string::npos);
  CHECK(e->batch->statement.rfind("scb_user_", 0) == 0);

  auto refused = [&](const std::string& batch, const std::string& text, const std::string& entity = "") {
    d.write("entities/user.yaml", (entity.empty() ? base : entity) + batch);
    auto ps = problems_of(d);
    INFO(dump(ps));
    CHECK(has_problem(ps, "user.yaml", 0, text));
  };
  refused("batch:\n  param: user_id\n  sql: SELECT id, email FROM users WHERE id = ANY(:user_id)\n  key_column: id\n",
          "a tenant-scoped batch.sql must filter by the tenant: it must use :org_id");
  refused("batch:\n  param: user_id\n  sql: SELECT id, email FROM users WHERE org_id = :org_id\n  key_column: id\n",
          "batch.sql must use :user_id as the array");
  refused("batch:\n  param: org_id\n  sql: SELECT 1\n  key_column: id\n", "batch.param cannot be the tenant");
  refused("batch:\n  param: nope\n  sql: SELECT 1\n  key_column: id\n", "batch.param 'nope' is not a declared param");
  refused("batch:\n  param: user_id\n  sql: SELECT id FROM users WHERE org_id = :org_id AND id = ANY(:user_id)\n",
          "batch needs 'key_column'");
  refused("batch:\n  param: user_id\n  key_column: id\n", "batch needs 'sql'");
  refused("batch:\n  param: user_id\n  sql: SELECT id FROM users WHERE org_id = :org_id AND id = ANY(:user_id) AND x = :typo\n  key_column: id\n",
          "batch.sql uses :typo");
  refused("batch:\n  param: user_id\n  sql: SELECT 1\n  key_column: id\n  extra: 1\n", "unknown key 'extra'");
  refused("batch:\n  param: user_id\n  sql: SELECT id FROM users WHERE org_id = :org_id AND id = ANY(:user_id)\n  key_column: id\n",
          "a batch form is for 'result: row' entities",
          "name: user\nscope: tenant\nparams:\n  user_id: uuid\nresult: rows\nsql: SELECT id FROM users WHERE org_id = :org_id AND id = :user_id\n");
}

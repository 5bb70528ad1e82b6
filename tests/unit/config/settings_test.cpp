// The settings table: its defaults are the built-in ones, every row parses
// from the file, a reload keeps exactly the restart rows, and
// docs/configuration.md carries the table as it is.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "../temp_dir.hpp"
#include "sidecache/config/settings.hpp"

using namespace sidecache;

TEST_CASE("settings: every literal default parses to the built-in default") {
  for (const auto& s : config::settings()) {
    if (!s.literal_default || s.default_text.empty()) continue;
    INFO(s.key);
    config::Config built_in, parsed;
    std::string text = s.default_text;
    if (text.size() >= 2 && text.front() == '"') text = text.substr(1, text.size() - 2);  // YAML quotes
    CHECK(s.parse(parsed, text, "/") == "");
    CHECK(s.same(parsed, built_in));
  }
}

TEST_CASE("settings: the sections and their keys come from the table") {
  auto top = config::setting_children("");
  CHECK(std::find(top.begin(), top.end(), "redis") != top.end());
  CHECK(std::find(top.begin(), top.end(), "entities_dir") != top.end());
  auto breaker = config::setting_children("redis.breaker");
  CHECK(breaker == std::vector<std::string>{"failures", "open_timeout", "half_open_probes"});
  auto sections = config::setting_sections();
  auto at = [&](const std::string& s) { return std::find(sections.begin(), sections.end(), s) - sections.begin(); };
  CHECK(at("redis") < at("redis.breaker"));
}

TEST_CASE("settings: http.max_body_bytes can be set from the file") {
  test::TempDir d;
  d.write("entities/e.yaml", "name: e\nscope: global\nsql: SELECT 1 AS one\n");
  std::string main = d.write("sidecache.yaml",
                             "entities_dir: entities\npostgres: { dsn: \"host=x\" }\nhttp: { max_body_bytes: 1024 }\n");
  config::Config cfg = config::load(main, [](const std::string&) { return std::nullopt; });
  CHECK(cfg.http.max_body_bytes == 1024);
}

TEST_CASE("settings: a reload keeps every restart setting that changed and names it, and takes the others") {
  config::Config running, fresh;
  auto set = [&](const std::string& key, const std::string& text) {
    for (const auto& s : config::settings())
      if (s.key == key) REQUIRE(s.parse(fresh, text, "/") == "");
  };
  set("http.max_connections", "10");
  set("unix_socket.mode", "0600");
  set("log_format", "json");
  set("redis.breaker.failures", "9");
  set("log_level", "debug");
  set("defaults.ttl", "1m");
  auto changed = config::keep_restart_settings(fresh, running);
  std::sort(changed.begin(), changed.end());
  CHECK(changed == std::vector<std::string>{"http.max_connections", "log_format", "redis.breaker.failures", "unix_socket.mode"});
  CHECK(fresh.http.max_connections == running.http.max_connections);
  CHECK(fresh.listen.unix_mode == running.listen.unix_mode);
  CHECK(fresh.log_json == running.log_json);
  CHECK(fresh.redis.breaker_failures == running.redis.breaker_failures);
  CHECK(fresh.log_level == "debug");
  CHECK(fresh.defaults.ttl == std::chrono::minutes(1));
}

TEST_CASE("settings: docs/configuration.md carries the generated table") {
  std::ifstream in(std::string(SIDECACHE_SOURCE_DIR) + "/docs/configuration.md");
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string doc = ss.str();
  const std::string begin = "<!-- settings: begin -->\n", end = "<!-- settings: end -->";
  auto a = doc.find(begin), b = doc.find(end);
  REQUIRE(a != std::string::npos);
  REQUIRE(b != std::string::npos);
  // On a mismatch: build/sidecache settings prints the table to paste.
  CHECK(doc.substr(a + begin.size(), b - a - begin.size()) == config::settings_markdown());
}

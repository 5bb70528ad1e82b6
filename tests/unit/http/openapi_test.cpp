// docs/openapi.yaml and the router agree: every endpoint the router accepts
// is in the spec with its method, and the spec has nothing the server lacks.
// (tests/tools: Redocly CLI lints the spec itself.)
#include <catch2/catch.hpp>

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>

#include "../entity_fixture.hpp"
#include "sidecache/http/router.hpp"
#include "sidecache/version.hpp"

using namespace sidecache;

namespace {
std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}
// A concrete request for an endpoint of the table.
std::string concrete(std::string_view path) {
  std::string p(path);
  auto at = p.find("{entity}");
  if (at != std::string::npos) p.replace(at, 8, "flags");
  return p;
}
}  // namespace

TEST_CASE("every route the server has is in docs/openapi.yaml, and nothing else is") {
  YAML::Node spec = YAML::LoadFile(SIDECACHE_SOURCE_DIR "/docs/openapi.yaml");
  REQUIRE(spec["openapi"].as<std::string>().rfind("3.1", 0) == 0);
  std::set<std::pair<std::string, std::string>> in_spec, in_server;
  static const std::set<std::string> kMethods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"};
  for (const auto& path : spec["paths"])
    for (const auto& op : path.second)
      if (kMethods.count(op.first.as<std::string>())) in_spec.emplace(op.first.as<std::string>(), path.first.as<std::string>());
  for (const auto& ep : http::endpoints()) in_server.emplace(lower(ep.method), std::string(ep.path));
  CHECK(in_spec == in_server);

  // And the table is what the router really does: each listed endpoint
  // routes (no 404 no_route, no 405), each other method gets a 405 naming
  // the listed ones.
  config::Config cfg;
  cfg.key_prefix = "sc:";
  cfg.entities.push_back(test::make_entity("flags", config::Scope::global, {}));
  for (const auto& path : spec["paths"]) {
    std::string p = path.first.as<std::string>();
    for (const char* m : {"GET", "PUT", "POST", "DELETE", "PATCH"}) {
      INFO(m << " " << p);
      http::Route r = http::route(cfg, m, concrete(p), R"({"entity":"flags"})");
      bool listed = in_server.count({lower(m), p}) == 1;
      if (listed) {
        CHECK(r.answer.status != 405);
        CHECK(r.answer.body.find("no_route") == std::string::npos);
      } else {
        CHECK(r.answer.status == 405);
      }
    }
  }
  CHECK(http::route(cfg, "GET", "/v2/nothing").answer.status == 404);
}

TEST_CASE("docs/openapi.yaml carries the build's version") {
  YAML::Node spec = YAML::LoadFile(SIDECACHE_SOURCE_DIR "/docs/openapi.yaml");
  CHECK(spec["info"]["version"].as<std::string>() == sidecache::kVersion);
}

// Tags, pure logic: templates, the tags and watermark keys they render to,
// tagged values, and the tag invalidations a written row makes.
#include <catch2/catch.hpp>

#include "../entity_fixture.hpp"
#include "sidecache/cache/key.hpp"
#include "sidecache/cache/notification.hpp"
#include "sidecache/cache/key_layout.hpp"
#include "sidecache/cache/tags.hpp"
#include "sidecache/cache/value.hpp"
#include "sidecache/config/tag_template.hpp"

using namespace sidecache;
using config::ParamType;
using config::Scope;
using config::TagSource;

namespace {

const std::string kOrg = "11111111-1111-1111-1111-111111111111";
const std::string kOrg2 = "22222222-2222-2222-2222-222222222222";

config::Entity task() {
  auto e = test::make_entity("task", Scope::tenant, {{"task_id", ParamType::integer}});
  return e;
}

std::optional<config::TagTemplate> parse(const config::Entity& e, const std::string& text, TagSource source,
                                         std::string& why) {
  auto index = [&](std::string_view n) {
    for (std::size_t i = 0; i < e.params.size(); ++i)
      if (e.params[i].name == n) return static_cast<int>(i);
    return -1;
  };
  return config::parse_tag_template(text, source, index, e.result == config::ResultShape::row, why);
}

config::TagTemplate must(const config::Entity& e, const std::string& text, TagSource source = TagSource::entity) {
  std::string why;
  auto t = parse(e, text, source, why);
  INFO(why);
  REQUIRE(t);
  return *t;
}

std::string refusal(const config::Entity& e, const std::string& text, TagSource source = TagSource::entity) {
  std::string why;
  auto t = parse(e, text, source, why);
  CHECK(!t);
  return why;
}

}  // namespace

TEST_CASE("tag templates: params, result columns and literals, and every mistake is refused with a fix") {
  auto e = task();
  auto p = must(e, "task:{task_id}");
  REQUIRE(p.parts.size() == 2);
  CHECK(p.parts[0].literal == "task:");
  CHECK(p.parts[1].param == 1);
  CHECK(!p.from_row());
  auto c = must(e, "project:{row.project_id}/x");
  REQUIRE(c.parts.size() == 3);
  CHECK(c.parts[1].column == "project_id");
  CHECK(c.parts[2].literal == "/x");
  CHECK(c.from_row());
  CHECK(must(e, "everything").parts.size() == 1);
  CHECK(must(e, "{row.project_id}:{task_id}").parts.size() == 3);

  CHECK(refusal(e, "x:{nope}").find("{nope} is not a param of this entity") != std::string::npos);
  CHECK(refusal(e, "x:{task_id").find("'{' without its '}'") != std::string::npos);
  CHECK(refusal(e, "x:{a{b}").find("'{' without its '}'") != std::string::npos);
  CHECK(refusal(e, "x}").find("'}' without its '{'") != std::string::npos);
  CHECK(refusal(e, "").find("empty") != std::string::npos);
  CHECK(refusal(e, "a\tb").find("control character") != std::string::npos);
  CHECK(refusal(e, std::string(300, 'x')).find("longer than 256 bytes") != std::string::npos);
  CHECK(refusal(e, "p:{row.Bad-Name}").find("not a column name") != std::string::npos);
  auto rows = e;
  rows.result = config::ResultShape::rows;
  CHECK(refusal(rows, "p:{row.project_id}").find("only a 'result: row' entity has") != std::string::npos);

  // In an invalidate_on rule: columns of the written row ({row.x} is the same).
  auto w = must(e, "project:{project_id}", TagSource::written_row);
  CHECK(w.parts[1].column == "project_id");
  CHECK(must(e, "project:{row.project_id}", TagSource::written_row).parts[1].column == "project_id");
  CHECK(refusal(e, "project:{1x}", TagSource::written_row).find("not a column name") != std::string::npos);
}

TEST_CASE("tags render per tenant into watermark keys: param tags are read with the value, column tags come from the row") {
  auto e = task();
  e.tags = {must(e, "task:{task_id}"), must(e, "project:{row.project_id}"), must(e, "owner:{row.owner}")};
  auto keys = cache::read_keys("sc:", e, {kOrg, "7"}, "sc:value");
  REQUIRE(keys.size() == 5);  // value, three watermarks, one param tag
  CHECK(keys.back() == cache::tag_watermark("sc:", kOrg, "task:7"));
  CHECK(keys.back() == "sc:wm:tag:" + kOrg + ":task%3A7");
  // Another tenant's tag is another key; a global tag has no tenant part.
  CHECK(cache::tag_watermark("sc:", kOrg2, "task:7") != keys.back());
  CHECK(cache::tag_watermark("sc:", "", "task:7") == "sc:wm:tag:task%3A7");
  // A tenant "a" with tag "b" and a global tag "a:b" never meet.
  CHECK(cache::tag_watermark("sc:", "a", "b") != cache::tag_watermark("sc:", "", "a:b"));

  auto cols = cache::column_tag_keys(cache::KeyLayout("sc:", false), e, {kOrg, "7"}, "sc:value", R"({"id":7,"project_id":42,"owner":null})");
  REQUIRE(cols.size() == 1);  // a NULL column names no tag
  CHECK(cols[0] == cache::tag_watermark("sc:", kOrg, "project:42"));
  CHECK(cache::column_tag_keys(cache::KeyLayout("sc:", false), e, {kOrg, "7"}, "sc:value", R"({"project_id":"42","owner":true})") ==
        std::vector<std::string>{cache::tag_watermark("sc:", kOrg, "project:42"), cache::tag_watermark("sc:", kOrg, "owner:true")});
  CHECK(cache::column_tag_keys(cache::KeyLayout("sc:", false), e, {kOrg, "7"}, "sc:value", R"({"project_id":4.5})").empty());  // not a key value
  CHECK(cache::column_tag_keys(cache::KeyLayout("sc:", false), e, {kOrg, "7"}, "sc:value", "[1,2]").empty());
  CHECK(cache::column_tag_keys(cache::KeyLayout("sc:", false), e, {kOrg, "7"}, "sc:value", "not json").empty());
}

TEST_CASE("a tagged value carries its column tags after the body, and they come off without touching the body") {
  cache::ValueHeader h;
  h.created_us = 123;
  h.soft_expiry_us = 456;
  std::vector<std::string> tags = {"sc:wm:tag:a:project%3A42", "sc:wm:tag:a:owner%3A9"};
  std::string bytes = cache::encode_value(h, R"({"id":1})", tags);
  auto back = cache::decode_header(bytes);
  REQUIRE(back);
  CHECK(back->tagged());
  CHECK(back->created_us == 123);
  std::string body = bytes.substr(cache::kValueHeaderSize);
  auto keys = cache::take_tag_keys(body);
  REQUIRE(keys);
  CHECK(*keys == tags);
  CHECK(body == R"({"id":1})");
  // Untagged: the flag is clear, the layout unchanged.
  std::string plain = cache::encode_value(h, "{}");
  CHECK(!cache::decode_header(plain)->tagged());
  CHECK(plain.size() == cache::kValueHeaderSize + 2);
  // Damaged trailers are refused and leave the body as it was.
  for (std::string bad : {std::string("x"), std::string("{}\x05\x00", 4), std::string("\n\x01\x00", 3),
                          std::string("a\n\nb\x04\x00", 6)}) {
    std::string copy = bad;
    CHECK(!cache::take_tag_keys(copy));
    CHECK(copy == bad);
  }
}

TEST_CASE("invalidate_on tags: a written row invalidates its tags in its tenant, old and new image, and a NULL column names none") {
  config::Config c;
  c.key_prefix = "sc:";
  auto list = test::make_entity("project_tasks", Scope::tenant, {{"project_id", ParamType::integer}});
  config::InvalidateOn rule{"tasks", "org_id", {}, {}};
  rule.tags.push_back(must(list, "project:{project_id}", TagSource::written_row));
  list.invalidate_on.push_back(rule);
  auto other = list;  // a second entity with the same rule: one invalidation per tag
  other.name = "task";
  c.entities = {list, other};
  std::string error;
  auto out = cache::invalidations_for(
      c,
      R"({"table":"tasks","op":"UPDATE","old":{"org_id":")" + kOrg + R"(","project_id":42},"new":{"org_id":")" + kOrg +
          R"(","project_id":7}})",
      error);
  REQUIRE(out.size() == 2);
  for (const auto& inv : out) {
    CHECK(inv.scope == cache::Invalidation::Scope::tag);
    CHECK(inv.tenant == kOrg);
    CHECK(inv.entity == nullptr);
  }
  CHECK(out[0].tag == "project:42");
  CHECK(out[1].tag == "project:7");
  // NULL project: nothing carries "project:"; an INSERT with one names it.
  out = cache::invalidations_for(c, R"({"table":"tasks","op":"INSERT","new":{"org_id":")" + kOrg + R"(","project_id":null}})", error);
  CHECK(out.empty());
  // Whose row cannot be told: the whole entity, every tenant.
  out = cache::invalidations_for(c, R"({"table":"tasks","op":"DELETE","old":{"org_id":"nope","project_id":1}})", error);
  REQUIRE(out.size() == 2);
  CHECK(out[0].scope == cache::Invalidation::Scope::entity_all_tenants);
}

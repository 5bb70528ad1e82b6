// A request that joins a fill of an entity with column tags: the row's tags
// are known only from the row, so the request's own look (which found no
// value) could not judge them. Against FakeStore and FakeFiller.
#include <catch2/catch.hpp>

#include "read_path_fixture.hpp"
#include "sidecache/cache/key.hpp"
#include "sidecache/config/tag_template.hpp"

using namespace sidecache;
using test::ReadPathFixture;
using K = cache::ReadResult::Kind;

namespace {

// The entity keyed by "id", tagged by its row's "owner" column.
void owner_tagged(config::Entity& e) {
  std::string why;
  auto t = config::parse_tag_template("owner:{row.owner}", config::TagSource::entity,
                                      [](std::string_view) { return -1; }, true, why);
  REQUIRE(t);
  e.tags.push_back(*t);
}

}  // namespace

TEST_CASE("read path: a request that joins a fill after a column tag invalidation that stopped its store fills again") {
  ReadPathFixture f(owner_tagged);
  REQUIRE(f.entity->column_tags());
  f.filler.body = R"({"owner":"ann","v":1})";
  // While the leader waits to store, the row changes and its tag is
  // invalidated. A request that begins then finds no value (nothing was
  // stored), so its look saw no mark of the row's tags; it joins the fill.
  auto [leader, follower] = f.race_a_commit(
      cache::tag_watermark(f.snap->cfg->key_prefix, ReadPathFixture::kOrg, "owner:ann"), R"({"owner":"ann","v":2})");
  // The leader answers what it read, not stored: the tag was invalidated after its start.
  CHECK(leader->result->body == R"({"owner":"ann","v":1})");
  CHECK_FALSE(leader->result->stored);
  // The follower began after the invalidation answered: not the old row.
  CHECK(follower->result->body == R"({"owner":"ann","v":2})");
  CHECK(f.filler.calls == 2);
}

TEST_CASE("read path: requests that wait for a fill of an entity with column tags begun after them take its row, stored or not") {
  // The rule above costs nothing when the fill began after the request:
  // here no fill can store (the value is over max_value_bytes), and ten
  // concurrent misses make two queries: the first, and the one every
  // request that waited for it then shares.
  ReadPathFixture f([](config::Entity& e) {
    owner_tagged(e);
    e.max_value_bytes = 8;
  });
  test::Gate gate(f.ioc), second_gate(f.ioc);
  f.filler.gate = &gate;
  // The second query waits too, so the requests that go round find it in flight.
  f.filler.during = [&] {
    if (f.filler.calls == 2) f.filler.gate = &second_gate;
  };
  f.filler.body = R"({"owner":"ann","v":1})";
  std::vector<std::shared_ptr<ReadPathFixture::Slot>> reads;
  for (int i = 0; i < 10; ++i) reads.push_back(f.get());
  f.settle();
  REQUIRE(f.filler.calls == 1);
  gate.open();
  f.settle();
  REQUIRE(f.filler.calls == 2);
  second_gate.open();
  f.settle();
  for (const auto& r : reads) {
    REQUIRE(r->result);
    CHECK(r->result->body == R"({"owner":"ann","v":1})");
    CHECK_FALSE(r->result->stored);
  }
  CHECK(f.filler.calls == 2);
}

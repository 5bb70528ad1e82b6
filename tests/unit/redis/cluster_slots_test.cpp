// Redis Cluster's key space (the cluster specification's examples) and the
// replies that describe it: CLUSTER SLOTS and MOVED / ASK.
#include <catch2/catch.hpp>

#include <hiredis/hiredis.h>

#include <memory>

#include "sidecache/redis/cluster_slots.hpp"

using namespace sidecache::redis;

namespace {
// The first reply hiredis reads from `resp`.
std::unique_ptr<redisReply, void (*)(void*)> read_reply(const std::string& resp) {
  redisReader* rd = redisReaderCreate();
  redisReaderFeed(rd, resp.data(), resp.size());
  void* r = nullptr;
  REQUIRE(redisReaderGetReply(rd, &r) == REDIS_OK);
  redisReaderFree(rd);
  REQUIRE(r);
  return {static_cast<redisReply*>(r), freeReplyObject};
}
}  // namespace

TEST_CASE("cluster key space: CRC16 and hash tags as the cluster specification gives them") {
  CHECK(crc16("123456789") == 0x31C3);
  CHECK(key_slot("foo") == 12182);  // CLUSTER KEYSLOT foo on a real cluster
  CHECK(key_slot("{user1000}.following") == key_slot("{user1000}.followers"));
  CHECK(hashed_part("{user1000}.following") == "user1000");
  CHECK(hashed_part("foo{}{bar}") == "foo{}{bar}");  // an empty tag: the whole key
  CHECK(hashed_part("foo{{bar}}zap") == "{bar");
  CHECK(hashed_part("foo{bar}{zap}") == "bar");
  CHECK(hashed_part("foo{bar") == "foo{bar");
  CHECK(key_slot("") == 0);
}

TEST_CASE("cluster key space: every slot has a short tag that lands in it") {
  for (unsigned s = 0; s < kSlots; ++s) {
    const std::string& t = tag_of_slot(static_cast<std::uint16_t>(s));
    REQUIRE(!t.empty());
    REQUIRE(t.size() <= 4);
    REQUIRE(key_slot("{" + t + "}wm:e:user") == s);
  }
}

TEST_CASE("CLUSTER SLOTS: ranges, masters and replicas, an unknown endpoint, and what is refused") {
  std::string resp =
      "*3\r\n"
      "*3\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:30001\r\n$2\r\nid\r\n*0\r\n"
      "*4\r\n:5461\r\n:10922\r\n*3\r\n$9\r\n127.0.0.1\r\n:30002\r\n$1\r\nx\r\n*3\r\n$9\r\n127.0.0.1\r\n:30005\r\n$1\r\ny\r\n"
      "*3\r\n:10923\r\n:16383\r\n*2\r\n$1\r\n?\r\n:30003\r\n";
  auto reply = read_reply(resp);
  std::string why;
  auto ranges = parse_cluster_slots(reply.get(), why);
  REQUIRE(ranges);
  REQUIRE(ranges->size() == 3);
  CHECK((*ranges)[1].master.port == 30002);
  REQUIRE((*ranges)[1].replicas.size() == 1);
  CHECK((*ranges)[1].replicas[0].port == 30005);
  CHECK((*ranges)[2].master.host.empty());  // "?": the node that answered
  auto map = SlotMap::from(*ranges, why);
  REQUIRE(map);
  CHECK(map->covered() == kSlots);
  CHECK(map->nodes().size() == 3);
  CHECK(map->nodes()[static_cast<std::size_t>(map->node_of(5460))].port == 30001);
  CHECK(map->nodes()[static_cast<std::size_t>(map->node_of(5461))].port == 30002);
  map->move(5461, Node{"127.0.0.1", 30003, ""});
  CHECK(map->nodes()[static_cast<std::size_t>(map->node_of(5461))].port == 30003);
  CHECK(map->nodes()[static_cast<std::size_t>(map->node_of(5462))].port == 30002);

  // A partly served cluster: the rest has no owner.
  auto part = SlotMap::from({SlotRange{0, 99, Node{"a", 1, ""}, {}}}, why);
  REQUIRE(part);
  CHECK(part->covered() == 100);
  CHECK(part->node_of(100) == -1);
  // Two masters for one slot, an error reply, a range out of bounds.
  CHECK_FALSE(SlotMap::from({SlotRange{0, 10, Node{"a", 1, ""}, {}}, SlotRange{10, 20, Node{"b", 2, ""}, {}}}, why));
  CHECK(why.find("slot 10 to two masters") != std::string::npos);
  CHECK_FALSE(parse_cluster_slots(read_reply("-ERR This instance has cluster support disabled\r\n").get(), why));
  CHECK(why.find("cluster support disabled") != std::string::npos);
  CHECK_FALSE(parse_cluster_slots(read_reply("*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\na\r\n:1\r\n").get(), why));
  CHECK_FALSE(parse_cluster_slots(read_reply("*1\r\n*3\r\n:0\r\n:1\r\n*1\r\n$1\r\na\r\n").get(), why));
}

TEST_CASE("MOVED and ASK redirections, and the errors worth a retry") {
  auto m = parse_redirect("MOVED 3999 127.0.0.1:6381");
  REQUIRE(m);
  CHECK(m->kind == Redirect::Kind::moved);
  CHECK(m->slot == 3999);
  CHECK(m->to.address() == "127.0.0.1:6381");
  auto a = parse_redirect("ASK 16383 ::1:7000");
  REQUIRE(a);
  CHECK(a->kind == Redirect::Kind::ask);
  CHECK(a->to.host == "::1");
  CHECK(a->to.port == 7000);
  auto same_host = parse_redirect("MOVED 1 :7002");
  REQUIRE(same_host);
  CHECK(same_host->to.host.empty());
  CHECK_FALSE(parse_redirect("MOVED 16384 a:1"));
  CHECK_FALSE(parse_redirect("MOVED x a:1"));
  CHECK_FALSE(parse_redirect("MOVED 1 a:0"));
  CHECK_FALSE(parse_redirect("MOVED 1 a"));
  CHECK_FALSE(parse_redirect("ERR unknown command"));
  CHECK(retryable_cluster_error("TRYAGAIN Multiple keys request during rehashing of slot"));
  CHECK(retryable_cluster_error("CLUSTERDOWN The cluster is down"));
  CHECK_FALSE(retryable_cluster_error("ERR wrong number of arguments"));
}

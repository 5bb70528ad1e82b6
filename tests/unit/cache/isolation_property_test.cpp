// Tenant isolation as a property: over 10^6 random (tenant, entity, params)
// triples, built from adversarial pieces, no two distinct triples share a
// key. Proven by decoding every key back into its triple (a left inverse
// exists only for an injective encoding) and by counting distinct keys.
#include <catch2/catch.hpp>

#include <random>
#include <unordered_map>

#include "../entity_fixture.hpp"
#include "sidecache/cache/key.hpp"

using namespace sidecache;
using config::ParamType;
using config::Scope;

namespace {

const std::vector<std::string> kPieces = {
    ":", "%", "%3A", "%25", "%%", "*", "?", "[", "]", "{", "}", "\\", " ", "\t", "\r\n", std::string("\0", 1),
    "\x01", "\x7f", "a", "b", "a:b", "b:c", "t:", "g:", "sc:", "user", "0123abcd", "\xe2\x98\xa2", "\xf0\x9f\x9a\x80",
    "\xc3\xa9", "{tag}", "-", "_", "0", "9999999999"};

std::string random_value(std::mt19937_64& rng) {
  std::uniform_int_distribution<int> n(0, 6), piece(0, static_cast<int>(kPieces.size()) - 1), lng(0, 200);
  std::string s;
  if (lng(rng) == 0) s.assign(std::uniform_int_distribution<int>(200, 5000)(rng), 'x');  // very long
  for (int i = n(rng); i > 0; --i) s += kPieces[static_cast<std::size_t>(piece(rng))];
  return s;
}

std::vector<std::string> decode(std::string key, std::size_t prefix) {
  key.erase(0, prefix);
  std::vector<std::string> parts(1);
  for (std::size_t i = 0; i < key.size(); ++i) {
    if (key[i] == ':') parts.emplace_back();
    else if (key[i] == '%') {
      parts.back() += static_cast<char>(std::stoi(key.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else parts.back() += key[i];
  }
  return parts;
}

}  // namespace

TEST_CASE("10^6 random triples: no two distinct (tenant, entity, params) share a key") {
  std::vector<config::Entity> entities = {
      test::make_entity("user", Scope::tenant, {{"id", ParamType::string}}, ParamType::slug),
      test::make_entity("pair", Scope::tenant, {{"a", ParamType::string}, {"b", ParamType::string}}, ParamType::slug),
      test::make_entity("user_pair", Scope::tenant, {{"a", ParamType::string}}, ParamType::slug),
      test::make_entity("flags", Scope::global, {{"a", ParamType::string}, {"b", ParamType::string}}),
  };
  std::mt19937_64 rng(20261129);
  std::unordered_map<std::string, std::string> seen;  // key -> triple, serialised
  seen.reserve(1 << 21);
  std::size_t collisions = 0, round_trip_failures = 0;
  constexpr int kTriples = 1000000;
  for (int i = 0; i < kTriples; ++i) {
    const auto& e = entities[static_cast<std::size_t>(i) % entities.size()];
    std::vector<std::string> values;
    for (std::size_t p = 0; p < e.params.size(); ++p) values.push_back(random_value(rng));
    // Force the classic shift shapes now and then: "a:b"+"c" vs "a"+"b:c".
    if (i % 97 == 0 && values.size() >= 2) {
      values[values.size() - 2] = (i % 2) ? "a:b" : "a";
      values[values.size() - 1] = (i % 2) ? "c" : "b:c";
    }
    std::string key = cache::build_key("sc:", e, values);
    // Decoding gives back exactly what was encoded.
    auto parts = decode(key, 3);
    std::vector<std::string> expect;
    if (e.scope == Scope::tenant) expect = {"t", values[0], e.name, e.shape_hash};
    else expect = {"g", e.name, e.shape_hash};
    for (std::size_t p = e.scope == Scope::tenant ? 1 : 0; p < values.size(); ++p) expect.push_back(values[p]);
    if (parts != expect) ++round_trip_failures;
    std::string triple = e.name;
    for (const auto& v : values) triple += std::string("\0\x01", 2) + v;
    auto [it, fresh] = seen.emplace(key, triple);
    if (!fresh && it->second != triple) ++collisions;
  }
  WARN(kTriples << " triples, " << seen.size() << " distinct keys, " << collisions << " collisions");
  CHECK(round_trip_failures == 0);
  CHECK(collisions == 0);
}

// The same property through POST /v1/batch bodies: every item that parses
// reads the key of the tenant and params that item gave, never another
// item's, however the items mix tenants and adversarial values.
#include <boost/json.hpp>

#include "sidecache/http/router.hpp"

TEST_CASE("batch bodies: 2000 random batches, every item's key is its own tenant's and params', distinct items never share a key") {
  config::Config cfg;
  cfg.key_prefix = "sc:";
  cfg.entities.push_back(test::make_entity("note", Scope::tenant, {{"q", ParamType::string}}, ParamType::slug));
  const config::Entity& e = cfg.entities[0];
  std::mt19937_64 rng(20261202);
  const std::vector<std::string> tenants = {"acme", "acme-2", "a", "b", "t", "g", "sc", "user", "0123abcd"};
  std::uniform_int_distribution<int> pick(0, static_cast<int>(tenants.size()) - 1), count(1, 40);
  std::size_t items_read = 0;
  for (int round = 0; round < 2000; ++round) {
    boost::json::array reqs;
    std::vector<std::pair<std::string, std::string>> asked;
    for (int i = count(rng); i > 0; --i) {
      std::string t = tenants[static_cast<std::size_t>(pick(rng))], q = random_value(rng);
      boost::json::object params;
      params["org_id"] = t;
      params["q"] = q;
      reqs.push_back(boost::json::object{{"entity", "note"}, {"params", std::move(params)}});
      asked.emplace_back(t, q);
    }
    auto r = http::parse_batch(cfg, boost::json::serialize(boost::json::object{{"requests", std::move(reqs)}}));
    REQUIRE(r.kind == http::Route::Kind::batch);
    REQUIRE(r.batch.size() == asked.size());
    std::unordered_map<std::string, std::pair<std::string, std::string>> owner;
    for (std::size_t i = 0; i < asked.size(); ++i) {
      if (!r.batch[i].request) continue;  // a value the string type refuses (NUL, too long, bad UTF-8)
      const auto& req = *r.batch[i].request;
      ++items_read;
      auto back = cache::parse_key(cfg.key_prefix, e, req.key);
      REQUIRE(back);
      CHECK((*back)[0] == asked[i].first);
      CHECK((*back)[1] == req.values[1]);
      auto [it, fresh] = owner.try_emplace(req.key, asked[i].first, req.values[1]);
      if (!fresh) CHECK(it->second == std::make_pair(asked[i].first, req.values[1]));
    }
  }
  CHECK(items_read > 10000);
}

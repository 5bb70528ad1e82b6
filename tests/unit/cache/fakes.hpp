#pragma once
// In-memory stand-ins for the read path's two seams (cache::Store and
// cache::Filler), for unit tests of the read path's rules without sockets.
// FakeStore keeps the store's protocol (docs/invalidation.md): watermarks and
// tombstones judge values, a commit is refused when an invalidation is at or
// after the fill's start, and its clock only moves forward.
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/as_tuple.hpp>

#include <cstdlib>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>

#include "sidecache/cache/filler.hpp"
#include "sidecache/cache/store.hpp"
#include "sidecache/cache/wall_clock.hpp"

namespace sidecache::test {

namespace net = boost::asio;

// Holds coroutines until it is opened (a timer that never expires on its own).
class Gate {
 public:
  explicit Gate(net::io_context& ioc) : timer_(ioc, net::steady_timer::time_point::max()) {}
  net::awaitable<void> wait() {
    if (open_) co_return;
    ++waiting_;
    co_await timer_.async_wait(net::as_tuple(net::use_awaitable));
    --waiting_;
  }
  void open() {
    open_ = true;
    timer_.cancel();
  }
  int waiting() const { return waiting_; }

 private:
  net::steady_timer timer_;
  bool open_ = false;
  int waiting_ = 0;
};

class FakeStore final : public cache::Store {
 public:
  bool down = false;  // every call fails, as when Redis is unreachable
  Gate* commit_gate = nullptr;  // commits wait here (after the fill, before the check)
  std::optional<cache::Commit> commit_result;  // answer this instead (as if the script timed out, say)
  int lookups = 0, begins = 0, commits = 0;
  int cold_begins = 0;  // begins without a look first (ReadPath's cold guess)
  std::map<std::string, std::string> kv;

  // The store's clock: the wall clock, strictly increasing.
  std::uint64_t now() { return last_ = std::max(last_ + 1, cache::wall_us()); }

  // Puts a value straight in, as an earlier fill would have.
  void put(const std::string& key, const cache::ValueHeader& h, const std::string& body) {
    kv[key] = cache::encode_value(h, body);
  }
  bool has_value(const std::string& key) const {
    auto it = kv.find(key);
    if (it == kv.end()) return false;
    auto h = cache::decode_header(it->second);
    return h && !h->tombstone();
  }

  net::awaitable<cache::Lookup> lookup(const std::vector<std::string>& keys, std::uint64_t now_us,
                                       bool column_tags = false) override {
    ++lookups;
    co_return look(keys, now_us, column_tags);
  }
  int lookup_manys = 0;  // batch lookups (one round trip each)
  net::awaitable<std::vector<cache::Lookup>> lookup_many(const std::vector<std::vector<std::string>>& sets,
                                                         std::uint64_t now_us,
                                                         const std::vector<bool>& column_tags = {}) override {
    ++lookup_manys;
    std::vector<cache::Lookup> out;
    for (std::size_t i = 0; i < sets.size(); ++i)
      out.push_back(look(sets[i], now_us, i < column_tags.size() && column_tags[i]));
    co_return out;
  }
  net::awaitable<cache::Begin> begin_fill(const cache::KeyLayout&, const std::vector<std::string>& keys, const std::string& lease_key,
                                          const std::string& token, std::uint64_t, std::uint64_t now_us,
                                          bool cold = false) override {
    ++begins;
    if (cold) ++cold_begins;
    cache::Begin b;
    b.lookup = look(keys, now_us, true);
    if (down) co_return b;
    b.ok = true;
    b.start_us = now();
    if (auto it = kv.find(keys.front()); cold && it != kv.end()) {
      auto h = cache::decode_header(it->second);
      if (!h || !h->tombstone()) {
        b.only_looked = true;
        co_return b;
      }
    }
    b.leased = kv.emplace(lease_key, token).second;
    co_return b;
  }
  net::awaitable<cache::Commit> commit(const cache::KeyLayout&, const std::vector<std::string>& keys,
                                       const std::string& lease_key, const std::string& token, const cache::Begin& begin,
                                       std::uint64_t max_age_us, std::string_view bytes, std::uint64_t) override {
    const std::uint64_t start_us = begin.start_us;
    ++commits;
    if (commit_gate) co_await commit_gate->wait();
    if (down) co_return cache::Commit::error;
    if (commit_result) co_return *commit_result;
    if (auto it = kv.find(lease_key); it != kv.end() && it->second == token) kv.erase(it);
    if (now() - start_us > max_age_us) co_return cache::Commit::too_old;
    for (std::size_t i = 1; i < keys.size(); ++i)
      if (auto it = kv.find(keys[i]); it != kv.end() && std::strtoull(it->second.c_str(), nullptr, 10) >= start_us)
        co_return cache::Commit::invalidated;
    if (auto it = kv.find(keys[0]); it != kv.end())
      if (auto h = cache::decode_header(it->second); h && h->created_us >= start_us) co_return cache::Commit::invalidated;
    kv[keys[0]] = std::string(bytes);
    co_return cache::Commit::stored;
  }
  net::awaitable<void> release(const std::string& lease_key, const std::string& token) override {
    if (auto it = kv.find(lease_key); !down && it != kv.end() && it->second == token) kv.erase(it);
    co_return;
  }
  net::awaitable<std::optional<std::uint64_t>> tombstone(const cache::KeyLayout&, const std::string& key, std::uint64_t,
                                                         const std::string&, std::uint64_t lsn) override {
    if (down) co_return std::nullopt;
    cache::ValueHeader h;
    h.flags = cache::ValueHeader::kTombstone;
    h.created_us = now();
    kv[key] = cache::encode_value(h, "");
    lsn_of[key] = lsn;
    co_return h.created_us;
  }
  net::awaitable<std::optional<std::uint64_t>> raise_watermarks(const cache::KeyLayout&, const std::vector<std::string>& keys, std::uint64_t,
                                                                const std::string&, std::uint64_t lsn) override {
    if (down) co_return std::nullopt;
    std::uint64_t at = now();
    for (const auto& k : keys) {
      kv[k] = std::to_string(at);
      lsn_of[k] = std::max(lsn_of[k], lsn);
    }
    co_return at;
  }
  std::map<std::string, std::uint64_t> lsn_of;  // WAL positions recorded with invalidations

 private:
  // As RedisStore: a tagged value is judged with its column tags'
  // watermarks when the caller reads them (column_tags), else is a miss.
  cache::Lookup look(const std::vector<std::string>& keys, std::uint64_t now_us, bool column_tags) const {
    cache::Lookup out;
    if (down) {
      out.status = cache::Lookup::Status::error;
      out.error = "down";
      return out;
    }
    for (std::size_t i = 1; i < keys.size(); ++i)
      if (auto it = kv.find(keys[i]); it != kv.end()) {
        out.seen_watermark_us = std::max<std::uint64_t>(out.seen_watermark_us, std::strtoull(it->second.c_str(), nullptr, 10));
        if (auto l = lsn_of.find(keys[i]); l != lsn_of.end()) out.floor_lsn = std::max(out.floor_lsn, l->second);
      }
    auto it = kv.find(keys[0]);
    if (it == kv.end()) return out;
    auto h = cache::decode_header(it->second);
    if (!h) return out;
    std::string body = it->second.substr(cache::kValueHeaderSize);
    if (h->tagged()) {
      auto tags = column_tags ? cache::take_tag_keys(body) : std::nullopt;
      if (!tags) return out;
      for (const auto& k : *tags)
        if (auto w = kv.find(k); w != kv.end())
          out.seen_watermark_us = std::max<std::uint64_t>(out.seen_watermark_us, std::strtoull(w->second.c_str(), nullptr, 10));
      out.tag_keys = *tags;
    }
    if (h->tombstone()) {
      out.seen_watermark_us = std::max(out.seen_watermark_us, h->created_us);
      if (auto l = lsn_of.find(keys[0]); l != lsn_of.end()) out.floor_lsn = std::max(out.floor_lsn, l->second);
    }
    cache::Verdict v = cache::judge(*h, out.seen_watermark_us, now_us);
    if (v == cache::Verdict::invalidated) return out;
    out.status = v == cache::Verdict::fresh ? cache::Lookup::Status::fresh : cache::Lookup::Status::expired;
    out.header = *h;
    out.body = std::move(body);
    return out;
  }
  std::uint64_t last_ = 0;
};

class FakeFiller final : public cache::Filler {
 public:
  int calls = 0;
  Gate* gate = nullptr;  // fills wait here
  bool fail = false;     // answer "PostgreSQL unavailable"
  bool throws = false;   // throw instead of answering
  std::string body = R"({"v":1})";
  std::function<void()> during;  // runs while the fill is in progress (before the gate)

  std::vector<std::optional<std::uint64_t>> floors;  // each fill's WAL floor
  int batch_calls = 0;
  std::vector<std::size_t> batch_sizes;
  // One "query" for all: each key answers {"v":<its batch param value>}.
  net::awaitable<std::vector<pg::FillResult>> fill_batch(const config::Entity& e, std::vector<std::vector<std::string>> values,
                                                         std::optional<std::uint64_t> floor) override {
    ++batch_calls;
    batch_sizes.push_back(values.size());
    floors.push_back(floor);
    if (gate) co_await gate->wait();
    std::vector<pg::FillResult> out;
    for (const auto& v : values) {
      pg::FillResult r;
      r.status = pg::FillResult::Status::ok;
      r.json = "{\"v\":\"" + v[e.batch->param] + "\"}";
      out.push_back(std::move(r));
    }
    co_return out;
  }
  net::awaitable<pg::FillResult> fill(const config::Entity&, std::vector<std::string>,
                                      std::optional<std::uint64_t> floor) override {
    ++calls;
    floors.push_back(floor);
    if (during) during();
    if (gate) co_await gate->wait();
    if (throws) throw std::runtime_error("filler exploded");
    pg::FillResult r;
    if (fail) {
      r.status = pg::FillResult::Status::unavailable;
      r.message = "PostgreSQL is down";
    } else {
      r.status = pg::FillResult::Status::ok;
      r.json = body;
    }
    co_return r;
  }
};

}  // namespace sidecache::test

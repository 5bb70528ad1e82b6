#include "sidecache/cache/redis_store.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>

#include <spdlog/spdlog.h>

#include "sidecache/pg/lsn.hpp"
#include "redis_scripts.hpp"

namespace sidecache::cache {

using scripts::parse_us;

namespace {

// The WAL position of a watermark ("<time>:<position>"), or 0.
std::uint64_t watermark_lsn(const std::string& s) {
  auto colon = s.find(':');
  if (colon == std::string::npos) return 0;
  return pg::parse_lsn_hex(std::string_view(s).substr(colon + 1)).value_or(0);
}

// Only the absence of an answer counts against Redis; an error reply is an
// answer.
bool answered(const redis::Reply& r) {
  return r.status != redis::Reply::Status::timeout && r.status != redis::Reply::Status::unavailable;
}

}  // namespace

Lookup interpret(redis::Reply reply, std::size_t n_keys, std::uint64_t now_us, const redis::Reply* tag_marks) {
  Lookup out;
  if (reply.failed() || reply.elements.size() < n_keys) {
    out.status = Lookup::Status::error;
    out.error = reply.error.empty() ? "unexpected reply" : reply.error;
    return out;
  }
  auto see = [&](const redis::Reply& w) {
    if (!w.is_value()) return;
    out.seen_watermark_us = std::max(out.seen_watermark_us, parse_us(w.value));
    out.floor_lsn = std::max(out.floor_lsn, watermark_lsn(w.value));
  };
  for (std::size_t i = 1; i < n_keys; ++i) see(reply.elements[i]);
  redis::Reply& v = reply.elements[0];
  if (!v.is_value()) return out;  // absent
  auto h = decode_header({v.head.data(), v.head_len});
  if (!h) return out;  // foreign bytes: a miss, overwritten by the fill
  if (h->tagged()) {
    // Its column tags' watermarks were read with it, or it cannot be
    // judged: a miss (the fill that follows reads them).
    auto keys = tag_marks ? take_tag_keys(v.value) : std::nullopt;
    if (!keys || tag_marks->elements.size() != keys->size()) return out;
    for (const auto& w : tag_marks->elements) see(w);
    out.tag_keys = std::move(*keys);
  }
  if (h->tombstone()) {
    out.seen_watermark_us = std::max(out.seen_watermark_us, h->created_us);
    // Its WAL position follows the header (split off as the value).
    out.floor_lsn = std::max(out.floor_lsn, pg::parse_lsn_hex(v.value).value_or(0));
  }
  Verdict verdict = judge(*h, out.seen_watermark_us, now_us);
  if (verdict == Verdict::invalidated) return out;
  out.status = verdict == Verdict::fresh ? Lookup::Status::fresh : Lookup::Status::expired;
  out.header = *h;
  out.body = std::move(v.value);
  return out;
}

void RedisStore::count_failure(const redis::Reply& r) {
  if (!metrics_ || !r.failed()) return;
  if (r.status == redis::Reply::Status::timeout) metrics_->redis_failure("timeout");
  else if (r.status == redis::Reply::Status::error) metrics_->redis_failure("error");
  else metrics_->redis_failure("unavailable");
}

redis::Reply RedisStore::refused_by_breaker() {
  // Counted as such here, where it is known, not recognised later by its text.
  if (metrics_) metrics_->redis_failure("breaker_open");
  redis::Reply r;
  r.status = redis::Reply::Status::unavailable;
  r.error = "circuit breaker open";
  return r;
}

redis::LateVerdict RedisStore::late_verdict(std::uint64_t token) {
  if (!breaker_) return {};
  return [breaker = breaker_, token](bool answered) { breaker->record(token, answered); };
}

std::optional<std::uint64_t> RedisStore::allow() {
  if (!breaker_) return 0;  // (a cluster: each node's breaker, in the client)
  return breaker_->allow();
}

void RedisStore::record(std::uint64_t token, const redis::Reply& r) {
  count_failure(r);
  // A timeout is judged when its fate is known (late_verdict): a large value
  // that is slow to read is an answer, a hung Redis is not.
  if (r.status == redis::Reply::Status::timeout || !breaker_) return;
  breaker_->record(token, answered(r));
}

net::awaitable<redis::Reply> RedisStore::guarded_mget(const std::vector<std::string>& keys, std::size_t split) {
  auto token = allow();
  if (!token) co_return refused_by_breaker();
  redis::Reply r = co_await conn_->mget(keys, split, late_verdict(*token));
  record(*token, r);
  co_return r;
}

net::awaitable<redis::Reply> RedisStore::guarded_eval(const redis::Script& script, const std::vector<std::string>& keys,
                                                 const std::vector<std::string_view>& args, std::size_t split) {
  auto token = allow();
  if (!token) co_return refused_by_breaker();
  redis::Reply r = co_await conn_->eval(script, keys, args, split, late_verdict(*token));
  record(*token, r);
  co_return r;
}

net::awaitable<redis::Reply> RedisStore::guarded_command(std::string_view key, std::span<const std::string_view> argv,
                                                         std::chrono::milliseconds timeout) {
  auto token = allow();
  if (!token) co_return refused_by_breaker();
  redis::Reply r = co_await conn_->command_for(key, argv, 0, late_verdict(*token), timeout);
  record(*token, r);
  co_return r;
}

net::awaitable<redis::Reply> RedisStore::join(SharedLookup& l) {
  co_return co_await net::async_initiate<decltype(net::use_awaitable), void(redis::Reply)>(
      [&](auto handler) {
        net::any_io_executor ex = net::get_associated_executor(handler, conn_->executor());
        l.joiners.emplace_back(std::move(ex), std::move(handler));
      },
      net::use_awaitable);
}

net::awaitable<std::vector<Lookup>> RedisStore::lookup_many(const std::vector<std::vector<std::string>>& sets,
                                                            std::uint64_t now_us, const std::vector<bool>& column_tags) {
  if (conn_->config().mode == config::RedisMode::cluster) co_return co_await lookup_by_slot(sets, now_us, column_tags);
  co_return co_await lookup_group(sets, now_us, column_tags);
}

net::awaitable<std::vector<Lookup>> RedisStore::lookup_group(const std::vector<std::vector<std::string>>& sets,
                                                             std::uint64_t now_us, const std::vector<bool>& column_tags) {
  // Each key once: a batch's items of one tenant and entity share their
  // watermarks, so 50 items are ~53 keys, not 200. at[k]: where the k-th
  // key of the sets (in order) is in `all`; uses[u]: how many want all[u].
  std::vector<std::string> all;
  std::vector<std::size_t> at_of;
  std::vector<unsigned> uses;
  {
    std::unordered_map<std::string_view, std::size_t> index;
    for (const auto& keys : sets)
      for (const auto& k : keys) {
        auto [it, fresh] = index.emplace(k, all.size());
        if (fresh) {
          all.push_back(k);
          uses.push_back(0);
        }
        ++uses[it->second];
        at_of.push_back(it->second);
      }
  }
  // With column tags, one script: the MGET, then each tagged set's tag
  // watermarks (positions of their value keys in ARGV).
  std::vector<std::string> tagged_at;
  std::vector<std::size_t> marks_of(sets.size(), SIZE_MAX);
  for (std::size_t i = 0, first = 0; i < sets.size(); first += sets[i].size(), ++i) {
    if (i < column_tags.size() && column_tags[i]) {
      marks_of[i] = tagged_at.size();
      tagged_at.push_back(std::to_string(at_of[first] + 1));
    }
  }
  redis::Reply r;
  if (tagged_at.empty()) {
    redis::Reply got = co_await guarded_mget(all, 0);
    r = std::move(got);
  } else {
    std::vector<std::string_view> args(tagged_at.begin(), tagged_at.end());
    redis::Reply got = co_await guarded_eval(scripts::kLookupTagged, all, args, 0);
    r = std::move(got);
  }
  std::vector<Lookup> out;
  out.reserve(sets.size());
  const bool whole = !r.failed() && r.elements.size() == all.size() + tagged_at.size();
  std::size_t at = 0;
  for (std::size_t s_i = 0; s_i < sets.size(); ++s_i) {
    const auto& keys = sets[s_i];
    redis::Reply one;
    if (whole) {
      one.status = redis::Reply::Status::ok;
      one.elements.reserve(keys.size());
      for (std::size_t i = 0; i < keys.size(); ++i) {
        // The last set that wants a reply takes it; the others copy it.
        std::size_t u = at_of[at + i];
        if (--uses[u] == 0) one.elements.push_back(std::move(r.elements[u]));
        else one.elements.push_back(r.elements[u]);
      }
      // As mget(keys, kValueHeaderSize) would have split it.
      redis::Reply& v = one.elements[0];
      if (v.is_value() && v.value.size() >= kValueHeaderSize) {
        std::copy_n(v.value.data(), kValueHeaderSize, v.head.data());
        v.head_len = kValueHeaderSize;
        v.value.erase(0, kValueHeaderSize);
      }
    } else {
      one.status = r.failed() ? r.status : redis::Reply::Status::error;  // (an answer of the wrong shape)
      one.error = r.error.empty() ? "unexpected reply" : r.error;
    }
    at += keys.size();
    const redis::Reply* marks = whole && marks_of[s_i] != SIZE_MAX ? &r.elements[all.size() + marks_of[s_i]] : nullptr;
    out.push_back(interpret(std::move(one), keys.size(), now_us, marks));
  }
  co_return out;
}

net::awaitable<Lookup> RedisStore::lookup_tagged(const std::vector<std::string>& keys, std::uint64_t now_us) {
  // The column tags this key's value named when this worker last read it:
  // read their watermarks in the same MGET. The answer stands if the value
  // still names exactly those (the MGET is atomic); else the script.
  if (auto hint = tag_hints_.find(keys.front()); hint != tag_hints_.end()) {
    // The keys this read judges by: the hint may be replaced while it is in
    // flight, and only these were read with the value.
    const std::vector<std::string> hinted = hint->second;
    std::vector<std::string> with(keys);
    with.insert(with.end(), hinted.begin(), hinted.end());
    redis::Reply r = co_await guarded_mget(with, kValueHeaderSize);
    if (r.failed() || r.elements.size() != with.size()) co_return interpret(std::move(r), keys.size(), now_us);
    redis::Reply marks;
    marks.status = redis::Reply::Status::ok;
    for (std::size_t i = keys.size(); i < with.size(); ++i) marks.elements.push_back(std::move(r.elements[i]));
    r.elements.resize(keys.size());
    const redis::Reply& v = r.elements.front();
    auto h = v.is_value() ? decode_header({v.head.data(), v.head_len}) : std::nullopt;
    Lookup out = interpret(std::move(r), keys.size(), now_us, &marks);
    if (!h || !h->tagged() || out.tag_keys == hinted) co_return out;
  }
  // One script: the MGET and the value's own tag watermarks (not shared
  // with plain lookups: another command). ARGV: the value key's position.
  std::vector<std::string_view> value_at(1, "1");
  redis::Reply r = co_await guarded_eval(scripts::kLookupTagged, keys, value_at, kValueHeaderSize);
  redis::Reply marks;
  if (!r.failed() && r.elements.size() == keys.size() + 1) {
    marks = std::move(r.elements.back());
    r.elements.pop_back();
  }
  Lookup out = interpret(std::move(r), keys.size(), now_us, &marks);
  if (!out.tag_keys.empty()) {
    if (tag_hints_.size() >= kMaxTagHints) tag_hints_.clear();
    tag_hints_[keys.front()] = out.tag_keys;
  }
  co_return out;
}

net::awaitable<Lookup> RedisStore::lookup(const std::vector<std::string>& keys, std::uint64_t now_us,
                                          bool column_tags) {
  if (column_tags) co_return co_await lookup_tagged(keys, now_us);
  if (auto it = pending_lookups_.find(keys.front());
      it != pending_lookups_.end() && it->second->writes == conn_->writes() && *it->second->keys == keys) {
    redis::Reply shared = co_await join(*it->second);
    co_return interpret(std::move(shared), keys.size(), now_us);
  }
  SharedLookup self{&keys, conn_->writes(), {}};
  // Listed under its own key's bytes, which live as long as it does; any
  // older lookup of the key (already sent) is no longer joinable.
  pending_lookups_.erase(keys.front());
  pending_lookups_.emplace(keys.front(), &self);
  struct Unlist {
    std::unordered_map<std::string_view, SharedLookup*>& map;
    SharedLookup* self;
    ~Unlist() {
      auto it = map.find(self->keys->front());
      if (it != map.end() && it->second == self) map.erase(it);
    }
  };
  redis::Reply r;
  {
    Unlist unlist{pending_lookups_, &self};
    redis::Reply got = co_await guarded_mget(keys, kValueHeaderSize);
    r = std::move(got);
  }
  // Each joiner gets its own copy (its one copy of the value), on its own
  // executor.
  for (auto& [ex, handler] : self.joiners)
    net::post(ex, [h = std::move(handler), copy = r]() mutable { std::move(h)(std::move(copy)); });
  co_return interpret(std::move(r), keys.size(), now_us);
}

}  // namespace sidecache::cache

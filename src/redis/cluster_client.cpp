#include "sidecache/redis/cluster_client.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "sidecache/redis/ask_each.hpp"

namespace sidecache::redis {

namespace {
constexpr auto kRefreshEvery = std::chrono::seconds(1);
constexpr int kMaxRedirects = 5;
constexpr int kMaxRetries = 3;
}  // namespace

ClusterTopology::ClusterTopology(net::any_io_executor ex, config::RedisConfig cfg, std::vector<Node> seeds)
    : ex_(std::move(ex)), cfg_(std::move(cfg)), seeds_(std::move(seeds)) {}

std::shared_ptr<const SlotMap> ClusterTopology::map() const {
  std::lock_guard lock(mu_);
  return map_;
}

std::string ClusterTopology::last_error() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

config::RedisConfig ClusterTopology::node_config(const Node& n) const {
  return cfg_.at(n.host.empty() ? cfg_.host : n.host, n.port);
}

CircuitBreaker& ClusterTopology::breaker(const std::string& address) {
  std::lock_guard lock(mu_);
  auto& b = breakers_[address];
  if (!b) {
    CircuitBreaker::Settings st{cfg_.breaker_failures, cfg_.breaker_open_timeout, cfg_.breaker_half_open_probes};
    b = std::make_unique<CircuitBreaker>(st, [address](CircuitBreaker::State from, CircuitBreaker::State to) {
      spdlog::warn("redis cluster: circuit breaker of {} {} -> {}{}", address, to_string(from), to_string(to),
                   to == CircuitBreaker::State::open ? " (reads of its slots go straight to PostgreSQL)" : "");
    });
  }
  return *b;
}

std::vector<std::pair<std::string, CircuitBreaker::State>> ClusterTopology::breakers() {
  std::vector<std::pair<std::string, CircuitBreaker*>> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [a, b] : breakers_) all.emplace_back(a, b.get());
  }
  std::vector<std::pair<std::string, CircuitBreaker::State>> out;
  for (auto& [a, b] : all) out.emplace_back(a, b->state());
  return out;
}

void ClusterTopology::moved(std::uint16_t slot, const Node& to) {
  std::lock_guard lock(mu_);
  if (!map_) return;
  auto patched = std::make_shared<SlotMap>(*map_);
  patched->move(slot, to);
  map_ = std::move(patched);
}

void ClusterTopology::refresh(const std::string& why) {
  {
    std::lock_guard lock(mu_);
    if (running_) {
      again_ = true;  // once more when this one ends: the map may have moved since it asked
      return;
    }
    running_ = true;
  }
  spdlog::debug("redis cluster: refreshing the slot map ({})", why);
  // At most one a second: a MOVED storm costs one CLUSTER SLOTS per second.
  auto wait = last_start_ + kRefreshEvery - std::chrono::steady_clock::now();
  auto timer = std::make_shared<net::steady_timer>(ex_, std::max<std::chrono::steady_clock::duration>(wait, {}));
  timer->async_wait([self = shared_from_this(), timer](const boost::system::error_code&) { self->start_refresh(); });
}

void ClusterTopology::start_refresh() {
  last_start_ = std::chrono::steady_clock::now();
  // Ask the nodes of the map first (they are the cluster now), then the seeds.
  std::vector<config::RedisConfig> ask;
  if (auto m = map())
    for (const auto& n : m->nodes()) ask.push_back(node_config(n));
  for (const auto& n : seeds_) ask.push_back(node_config(n));
  auto fresh = std::make_shared<std::optional<SlotMap>>();
  ask_each(
      ex_, std::move(ask), {"CLUSTER", "SLOTS"},
      [fresh](const redisReply* reply) -> std::string {
        std::string why;
        auto ranges = parse_cluster_slots(reply, why);
        if (!ranges) return why;
        *fresh = SlotMap::from(*ranges, why);
        if (!*fresh) return why;
        if ((*fresh)->covered() == 0) return "it serves no slot yet";
        return {};
      },
      [self = shared_from_this(), fresh](std::string why) {
        ++self->refreshes_;
        bool again;
        {
          std::lock_guard lock(self->mu_);
          if (why.empty()) self->map_ = std::make_shared<const SlotMap>(std::move(**fresh));
          self->last_error_ = why;
          again = self->again_;
          self->again_ = false;
          self->running_ = false;
        }
        if (!why.empty()) spdlog::warn("redis cluster: cannot read the slot map: {}", why);
        if (again || !why.empty()) self->refresh(why.empty() ? "asked again meanwhile" : "the last refresh failed");
      });
}

ClusterClient::ClusterClient(net::any_io_executor ex, config::RedisConfig cfg, std::string name,
                             std::shared_ptr<ClusterTopology> topo)
    : ex_(std::move(ex)), cfg_(std::move(cfg)), name_(std::move(name)), topo_(std::move(topo)) {}

ClusterClient::~ClusterClient() { stop(); }

void ClusterClient::stop() {
  std::map<std::string, std::shared_ptr<Connection>> all;
  {
    std::lock_guard lock(conns_mu_);
    all.swap(conns_);
  }
  for (auto& [addr, c] : all) c->stop();
}

std::shared_ptr<Connection> ClusterClient::connection(const Node& n) {
  config::RedisConfig c = topo_->node_config(n);
  std::string addr = c.host + ":" + std::to_string(c.port);
  // Only this executor changes conns_: it reads without the lock.
  if (auto it = conns_.find(addr); it != conns_.end()) return it->second;
  auto conn = std::make_shared<Connection>(ex_, c, name_ + "@" + addr);
  {
    std::lock_guard lock(conns_mu_);
    conns_.emplace(addr, conn);
  }
  conn->start();
  ++made_;
  return conn;
}

std::uint64_t ClusterClient::writes() const {
  std::uint64_t n = made_;
  for (const auto& [addr, c] : conns_) n += c->writes();
  return n;
}

std::uint64_t ClusterClient::session(std::string_view key) const {
  std::shared_ptr<const SlotMap> map = topo_->map();
  int owner = map ? map->node_of(key_slot(key)) : -1;
  if (owner < 0) return 0;
  config::RedisConfig c = topo_->node_config(map->nodes()[static_cast<std::size_t>(owner)]);
  auto it = conns_.find(c.host + ":" + std::to_string(c.port));
  return it == conns_.end() ? 0 : it->second->session();
}

std::vector<std::vector<std::uint16_t>> ClusterClient::slots_by_master() const {
  std::shared_ptr<const SlotMap> map = topo_->map();
  if (!map) return {};
  std::vector<std::vector<std::uint16_t>> by(map->nodes().size());
  for (std::uint32_t s = 0; s < kSlots; ++s)
    if (int owner = map->node_of(static_cast<std::uint16_t>(s)); owner >= 0)
      by[static_cast<std::size_t>(owner)].push_back(static_cast<std::uint16_t>(s));
  std::erase_if(by, [](const auto& slots) { return slots.empty(); });
  return by;
}

std::vector<std::pair<std::string, State>> ClusterClient::nodes() const {
  std::lock_guard lock(conns_mu_);
  std::vector<std::pair<std::string, State>> out;
  for (const auto& [addr, c] : conns_) out.emplace_back(addr, c->state());
  return out;
}

net::awaitable<Reply> ClusterClient::routed(std::string_view key, LateVerdict late, Send send) {
  const std::uint16_t slot = key_slot(key);
  bool asking = false;
  Node ask_to;
  int retries = 0;
  for (int hop = 0; hop <= kMaxRedirects + kMaxRetries; ++hop) {
    std::shared_ptr<const SlotMap> map = topo_->map();
    int owner = map ? map->node_of(slot) : -1;
    if (!asking && owner < 0) {
      topo_->refresh(map ? "a slot without a master" : "no slot map yet");
      Reply r;
      r.status = Reply::Status::unavailable;
      r.error = map ? "slot " + std::to_string(slot) + " has no master" : "no slot map yet";
      co_return r;
    }
    std::shared_ptr<Connection> conn = connection(asking ? ask_to : map->nodes()[static_cast<std::size_t>(owner)]);
    CircuitBreaker& breaker = topo_->breaker(conn->target());
    std::optional<std::uint64_t> token = breaker.allow();
    if (!token) {
      // The node may be gone for good (a failover): the map says so once
      // its replica is promoted (throttled, like every refresh).
      topo_->refresh("the breaker of " + conn->target() + " is open");
      Reply r;
      r.status = Reply::Status::unavailable;
      r.error = "circuit breaker open for " + conn->target();
      co_return r;
    }
    // A timeout is judged when its fate is known, by this node's breaker and
    // by the caller's.
    LateVerdict both = [&breaker, t = *token, late](bool answered) {
      breaker.record(t, answered);
      if (late) late(answered);
    };
    Reply r = co_await send(*conn, asking, both);
    if (r.status != Reply::Status::timeout)
      breaker.record(*token, r.status != Reply::Status::unavailable);
    asking = false;
    if (r.status == Reply::Status::unavailable) topo_->refresh("lost a connection to " + conn->address());
    if (r.status != Reply::Status::error) co_return r;
    if (auto redirect = parse_redirect(r.error)) {
      if (redirect->to.host.empty()) redirect->to.host = topo_->node_config(Node{}).host;
      if (redirect->kind == Redirect::Kind::moved) {
        ++moved_;
        topo_->moved(redirect->slot, redirect->to);
        topo_->refresh("MOVED");
      } else {
        ++asked_;
        asking = true;
        ask_to = redirect->to;
      }
      continue;
    }
    if (r.error.rfind("READONLY", 0) == 0) topo_->refresh("READONLY");
    if (retryable_cluster_error(r.error) && retries++ < kMaxRetries) {
      // A multi-key command during the slot's migration, or a cluster that
      // is settling: shortly again (1, 2, 4 ms), then it counts as Redis
      // down (a read goes to PostgreSQL): a migration can take seconds, and
      // a read must not wait for it.
      net::steady_timer t(ex_, std::chrono::milliseconds(1 << (retries - 1)));
      co_await t.async_wait(net::as_tuple(net::use_awaitable));
      continue;
    }
    if (retryable_cluster_error(r.error)) r.status = Reply::Status::unavailable;
    co_return r;
  }
  Reply r;
  r.status = Reply::Status::unavailable;
  r.error = "too many redirections for slot " + std::to_string(slot);
  co_return r;
}

net::awaitable<Reply> ClusterClient::mget(const std::vector<std::string>& keys, std::size_t split, LateVerdict late, bool) {
  co_return co_await routed(keys.empty() ? std::string_view() : std::string_view(keys.front()), std::move(late),
                            [&](Connection& c, bool asking, LateVerdict l) { return c.mget(keys, split, std::move(l), asking); });
}

net::awaitable<Reply> ClusterClient::eval(const Script& script, const std::vector<std::string>& keys,
                                          const std::vector<std::string_view>& args, std::size_t split, LateVerdict late,
                                          bool) {
  co_return co_await routed(keys.empty() ? std::string_view() : std::string_view(keys.front()), std::move(late),
                            [&](Connection& c, bool asking, LateVerdict l) {
                              return c.eval(script, keys, args, split, std::move(l), asking);
                            });
}

net::awaitable<Reply> ClusterClient::command_for(std::string_view key, std::span<const std::string_view> argv,
                                                 std::size_t split, LateVerdict late, std::chrono::milliseconds timeout) {
  co_return co_await routed(key, std::move(late), [&](Connection& c, bool asking, LateVerdict l) {
    return c.command(argv, split, std::move(l), timeout, asking);
  });
}

}  // namespace sidecache::redis

#include "sidecache/cache/l1.hpp"

#include <algorithm>

namespace sidecache::cache {

namespace {

// Shard count: a power of two up to 64, with at least 256 KiB per shard so
// that one shard still holds entries of a useful size.
std::size_t shard_count(std::size_t max_bytes) {
  std::size_t n = 1;
  while (n < 64 && max_bytes / (n * 2) >= (256u << 10)) n *= 2;
  return n;
}

// What one heap block of `n` bytes costs glibc's malloc: 8 bytes of
// header, rounded up to 16, at least 32.
std::size_t block(std::size_t n) { return std::max<std::size_t>(32, (n + 8 + 15) / 16 * 16); }
// A std::string's heap block, if it has one (15 bytes fit inline).
std::size_t string_heap(std::size_t len) { return len > 15 ? block(len + 1) : 0; }

}  // namespace

struct NearCache::Entry {
  std::vector<std::string> keys;  // keys[0] is the value key (the map's key points into it)
  ValueHeader header;
  std::string body;
  Clock::time_point expires;
  std::uint64_t checked_seq = 0;  // the invalidation sequence this entry was last judged at
  std::uint8_t freq = 0;          // 0..3, S3-FIFO
  bool in_main = false;
  std::uint64_t tenant = 0;       // tenant_key() of its tenant; 0: none (a global entity)
  std::size_t bytes = 0;
  std::list<Entry*>::iterator pos;
};

struct NearCache::Shard {
  std::mutex mu;
  std::size_t cap = 0;
  std::unordered_map<std::string_view, std::unique_ptr<Entry>> map;
  std::list<Entry*> small, main;  // front: newest
  std::size_t small_bytes = 0, main_bytes = 0;
  // Ghost: hashes of keys recently evicted from the small FIFO; a key that
  // comes back while remembered goes straight to the main FIFO.
  std::deque<std::size_t> ghost_order;
  std::unordered_map<std::size_t, unsigned> ghost;
  std::uint64_t hits = 0, misses = 0, evictions = 0;
  // l1.max_tenant_share of cap, and what each tenant holds here.
  std::size_t tenant_cap = SIZE_MAX;
  std::unordered_map<std::uint64_t, std::size_t> tenant_bytes;

  std::size_t bytes() const { return small_bytes + main_bytes; }

  void track(const Entry* e) {
    if (e->tenant) tenant_bytes[e->tenant] += e->bytes;
  }
  void untrack(const Entry* e) {
    if (!e->tenant) return;
    auto it = tenant_bytes.find(e->tenant);
    if (it == tenant_bytes.end()) return;
    it->second -= std::min(it->second, e->bytes);
    if (it->second == 0) tenant_bytes.erase(it);
  }
  std::size_t held_by(std::uint64_t tenant) const {
    auto it = tenant_bytes.find(tenant);
    return it == tenant_bytes.end() ? 0 : it->second;
  }
  // Evicts `tenant`'s oldest entry other than `keep` (small FIFO first, as
  // S3-FIFO would); false when it holds nothing else.
  bool evict_oldest_of(std::uint64_t tenant, const Entry* keep) {
    for (auto* fifo : {&small, &main}) {
      for (auto it = fifo->rbegin(); it != fifo->rend(); ++it) {
        Entry* e = *it;
        if (e->tenant != tenant || e == keep) continue;
        ++evictions;
        remove(e);
        return true;
      }
    }
    return false;
  }

  void unlink(Entry* e) {
    if (e->in_main) {
      main.erase(e->pos);
      main_bytes -= e->bytes;
    } else {
      small.erase(e->pos);
      small_bytes -= e->bytes;
    }
  }
  void remove(Entry* e) {
    unlink(e);
    erase(e);
  }
  // Every path by which an entry leaves the map comes through here (its
  // FIFO node already gone).
  void erase(Entry* e) {
    untrack(e);
    map.erase(std::string_view(e->keys[0]));  // destroys *e
  }
  void remember(std::size_t hash) {
    ++ghost[hash];
    ghost_order.push_back(hash);
    std::size_t limit = std::max<std::size_t>(map.size(), 16);
    while (ghost_order.size() > limit) {
      auto it = ghost.find(ghost_order.front());
      if (it != ghost.end() && --it->second == 0) ghost.erase(it);
      ghost_order.pop_front();
    }
  }
  bool recall(std::size_t hash) {
    auto it = ghost.find(hash);
    if (it == ghost.end()) return false;
    ghost.erase(it);  // its entries in ghost_order are skipped when they age out
    return true;
  }
  void evict_one() {
    if (!small.empty() && (small_bytes >= cap / 10 || main.empty())) {
      Entry* e = small.back();
      small.pop_back();
      small_bytes -= e->bytes;
      if (e->freq >= 1) {
        // Read again while in the small FIFO: it earns a place in main.
        e->in_main = true;
        e->freq = 0;
        main.push_front(e);
        e->pos = main.begin();
        main_bytes += e->bytes;
      } else {
        remember(std::hash<std::string_view>{}(e->keys[0]));
        ++evictions;
        erase(e);
      }
      return;
    }
    Entry* e = main.back();
    if (e->freq > 0) {
      --e->freq;
      main.splice(main.begin(), main, e->pos);  // reinserted at the head
      return;
    }
    main.pop_back();
    main_bytes -= e->bytes;
    ++evictions;
    erase(e);
  }
};

// Everything one entry makes the process hold, as malloc sees it: the
// entry, its key strings and their vector, the body, its hash map node and
// bucket, its FIFO list node, and the ghost slot it may leave behind. The
// byte bound is on this, so RSS stays near l1.max_bytes (bench/run.sh
// measures it).
std::size_t NearCache::entry_cost(const std::vector<std::string>& keys, std::size_t body_len) {
  std::size_t bytes = block(sizeof(Entry)) + block(keys.size() * sizeof(std::string)) + string_heap(body_len);
  for (const auto& k : keys) bytes += string_heap(k.size());
  bytes += block(sizeof(void*) * 4) + sizeof(void*);  // map node (+ hash) and its bucket
  bytes += block(sizeof(void*) * 3);                  // list node
  bytes += block(sizeof(std::size_t) * 2) + sizeof(std::size_t) * 2;  // a ghost map node and queue slot
  return bytes;
}

NearCache::NearCache(std::size_t max_bytes, std::chrono::milliseconds record_horizon, double max_tenant_share)
    : max_bytes_(max_bytes), horizon_(record_horizon) {
  std::size_t n = shard_count(max_bytes);
  for (std::size_t i = 0; i < n; ++i) {
    shards_.push_back(std::make_unique<Shard>());
    shards_.back()->cap = max_bytes / n;
    // Per shard: a tenant's keys spread over the shards by hash, and a bound
    // in each bounds the sum, with no lock across shards.
    if (max_tenant_share < 1.0)
      shards_.back()->tenant_cap = static_cast<std::size_t>(static_cast<double>(max_bytes / n) * max_tenant_share);
  }
}

std::uint64_t NearCache::tenant_key(std::string_view tenant) {
  if (tenant.empty()) return 0;
  return std::hash<std::string_view>{}(tenant) | 1;
}

NearCache::~NearCache() = default;

NearCache::Shard& NearCache::shard_of(std::string_view key, std::size_t& hash) {
  hash = std::hash<std::string_view>{}(key);
  // The low bits pick the shard; the ghost keeps the whole hash.
  return *shards_[(hash >> 7) & (shards_.size() - 1)];
}

std::uint64_t NearCache::newest_invalidation(const std::vector<std::string>& keys) {
  std::uint64_t newest = 0;
  std::lock_guard lock(records_mu_);
  if (records_.empty()) return 0;
  for (const auto& k : keys) {
    auto it = records_.find(k);
    if (it != records_.end()) newest = std::max(newest, it->second.effective());
  }
  return newest;
}

bool NearCache::get(std::string_view key, Clock::time_point now, ValueHeader& header, std::string& body) {
  if (!enabled_.load(std::memory_order_acquire)) return false;
  std::size_t hash;
  Shard& sh = shard_of(key, hash);
  std::lock_guard lock(sh.mu);
  auto it = sh.map.find(key);
  if (it == sh.map.end()) {
    ++sh.misses;
    return false;
  }
  Entry* e = it->second.get();
  if (now >= e->expires) {
    sh.remove(e);
    ++sh.misses;
    return false;
  }
  std::uint64_t seq = seq_.load(std::memory_order_acquire);
  if (e->checked_seq != seq) {
    // Invalidations arrived since this entry was last judged: judge it again.
    std::uint64_t wm = newest_invalidation(e->keys);
    if (wm != 0 && e->header.created_us <= wm) {
      sh.remove(e);
      ++sh.misses;
      invalidated_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    e->checked_seq = seq;
  }
  if (e->freq < 3) ++e->freq;
  ++sh.hits;
  header = e->header;
  body.assign(e->body);
  return true;
}

NearCache::Ticket NearCache::ticket() const {
  Ticket t;
  t.epoch = epoch_.load(std::memory_order_acquire);
  t.valid = enabled_.load(std::memory_order_acquire);
  return t;
}

bool NearCache::put(const Ticket& t, const std::vector<std::string>& keys, const ValueHeader& h, std::string_view body,
                    Clock::time_point expires, Clock::time_point now, std::string_view tenant) {
  if (keys.empty() || expires <= now || h.tombstone()) return false;
  std::size_t bytes = entry_cost(keys, body.size());
  std::size_t hash;
  Shard& sh = shard_of(keys[0], hash);
  if (bytes > sh.cap / 4) return false;  // too big to be worth a quarter of a shard
  const std::uint64_t owner = tenant_key(tenant);
  if (owner && bytes > sh.tenant_cap) return false;  // more than its tenant may hold
  std::lock_guard lock(sh.mu);
  // Under the shard lock, so a disable() (which flushes every shard) cannot
  // interleave: either this entry is flushed with the rest, or it is refused.
  if (!t.valid || !enabled_.load(std::memory_order_acquire) || epoch_.load(std::memory_order_acquire) != t.epoch) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  std::uint64_t seq = seq_.load(std::memory_order_acquire);
  std::uint64_t wm = newest_invalidation(keys);
  if (wm != 0 && h.created_us <= wm) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  bool to_main = false;
  std::uint8_t freq = 0;
  if (auto it = sh.map.find(std::string_view(keys[0])); it != sh.map.end()) {
    Entry* old = it->second.get();
    if (old->header.created_us > h.created_us) return false;  // a newer copy is already here
    to_main = old->in_main;
    freq = old->freq;
    sh.remove(old);
  } else {
    to_main = sh.recall(hash);
  }
  auto e = std::make_unique<Entry>();
  e->keys = keys;
  e->header = h;
  e->body.assign(body);
  e->expires = expires;
  e->checked_seq = seq;
  e->freq = freq;
  e->in_main = to_main;
  e->bytes = bytes;
  e->tenant = owner;
  Entry* raw = e.get();
  sh.track(raw);
  if (to_main) {
    sh.main.push_front(raw);
    raw->pos = sh.main.begin();
    sh.main_bytes += bytes;
  } else {
    sh.small.push_front(raw);
    raw->pos = sh.small.begin();
    sh.small_bytes += bytes;
  }
  sh.map.emplace(std::string_view(raw->keys[0]), std::move(e));
  // Over its share, a tenant makes room from its own copies, never from
  // another tenant's.
  if (owner)
    while (sh.held_by(owner) > sh.tenant_cap && sh.evict_oldest_of(owner, raw)) {
    }
  while (sh.bytes() > sh.cap) sh.evict_one();
  return sh.map.count(std::string_view(keys[0])) == 1;
}

void NearCache::record(std::string_view key, Clock::time_point now, const std::function<void(Record&)>& change) {
  std::uint64_t covers;
  {
    std::lock_guard lock(records_mu_);
    auto [it, fresh] = records_.try_emplace(std::string(key), Record{0, 0, now});
    change(it->second);
    it->second.received = now;
    covers = it->second.effective();
    record_order_.emplace_back(it->first, now);
    prune_locked(now);
  }
  // After the record: a reader that saw the old sequence judges again.
  seq_.fetch_add(1, std::memory_order_acq_rel);
  // A value key (a tombstone): drop its entry now rather than on its next read.
  std::size_t hash;
  Shard& sh = shard_of(key, hash);
  std::lock_guard lock(sh.mu);
  if (auto it = sh.map.find(key); it != sh.map.end() && it->second->header.created_us <= covers) {
    sh.remove(it->second.get());
    invalidated_.fetch_add(1, std::memory_order_relaxed);
  }
}

void NearCache::invalidate(std::string_view key, std::uint64_t at_us, Clock::time_point now) {
  record(key, now, [at_us](Record& r) { r.at_us = std::max(r.at_us, at_us); });
}

void NearCache::hold(std::string_view key, Clock::time_point now) {
  record(key, now, [](Record& r) { ++r.holds; });
}

void NearCache::release(std::string_view key, std::uint64_t at_us, Clock::time_point now) {
  record(key, now, [at_us](Record& r) {
    if (r.holds) --r.holds;
    r.at_us = std::max(r.at_us, at_us);
  });
}

void NearCache::prune(Clock::time_point now) {
  std::lock_guard lock(records_mu_);
  prune_locked(now);
}

void NearCache::prune_locked(Clock::time_point now) {
  // Forget what no entry or fill can still be affected by.
  while (!record_order_.empty() && now - record_order_.front().second > horizon_) {
    auto old = records_.find(record_order_.front().first);
    if (old != records_.end() && old->second.received == record_order_.front().second) records_.erase(old);
    record_order_.pop_front();
  }
}

void NearCache::flush() {
  for (auto& sh : shards_) {
    std::lock_guard lock(sh->mu);
    sh->map.clear();
    sh->small.clear();
    sh->main.clear();
    sh->small_bytes = sh->main_bytes = 0;
    sh->ghost.clear();
    sh->ghost_order.clear();
    sh->tenant_bytes.clear();
  }
}

void NearCache::disable() {
  enabled_.store(false, std::memory_order_release);
  epoch_.fetch_add(1, std::memory_order_acq_rel);
  flush();
}

void NearCache::enable() {
  epoch_.fetch_add(1, std::memory_order_acq_rel);
  flush();
  enabled_.store(true, std::memory_order_release);
}

std::size_t NearCache::tenant_bytes(std::string_view tenant) const {
  std::uint64_t owner = tenant_key(tenant);
  std::size_t sum = 0;
  for (const auto& sh : shards_) {
    std::lock_guard lock(sh->mu);
    sum += sh->held_by(owner);
  }
  return sum;
}

NearCache::Stats NearCache::stats() const {
  Stats s;
  for (const auto& sh : shards_) {
    std::lock_guard lock(sh->mu);
    s.entries += sh->map.size();
    s.bytes += sh->bytes();
    s.hits += sh->hits;
    s.misses += sh->misses;
    s.evictions += sh->evictions;
  }
  s.invalidated = invalidated_.load(std::memory_order_relaxed);
  s.refused_puts = refused_.load(std::memory_order_relaxed);
  {
    std::lock_guard lock(records_mu_);
    s.invalidation_records = records_.size();
  }
  s.enabled = enabled();
  return s;
}

}  // namespace sidecache::cache

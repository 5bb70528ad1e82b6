#pragma once
// The pool's wait queue, fair between tenants (docs/operations.md, "Noisy
// tenants").
//
// - One FIFO per tenant; connections take jobs round robin over the tenants
//   that have one waiting. A tenant with 1,000 queued fills delays another
//   tenant's single fill by at most one pop per tenant ahead of it in the
//   ring: never by the 1,000.
// - A job may carry a cap on how many of its tenant's jobs run at once; a
//   tenant at its cap is skipped (its jobs wait) while other tenants' run.
// - A tenant may hold at most `max_queued` waiting jobs (0: no bound but the
//   pool's own queue_limit); push() refuses the next one.
// - With `fair` off, every job shares one FIFO and no per-tenant rule
//   applies (the behaviour before this queue; kept for comparison runs).
//
// Pure logic, no locking: the pool calls it under its own mutex.
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sidecache::pg {

template <class Job>
class FairQueue {
 public:
  explicit FairQueue(bool fair = true, std::size_t max_queued = 0) : fair_(fair), max_queued_(max_queued) {}

  enum class Push { ok, tenant_full };

  // Queues `job` for `tenant`; `cap` is how many of the tenant's jobs may
  // run at once while this one is at the head of its queue (0: no cap).
  // A refused job is left where it was (the caller still owns it).
  Push push(const std::string& tenant, std::size_t cap, Job&& job) {
    Tenant& t = slot(fair_ ? tenant : std::string());
    if (fair_ && max_queued_ > 0 && t.queued.size() >= max_queued_) {
      forget_if_idle(t);
      return Push::tenant_full;
    }
    t.queued.push_back({std::move(job), fair_ ? cap : 0});
    ++size_;
    if (!t.in_ring) {
      t.in_ring = true;
      ring_.push_back(&t);
    }
    return Push::ok;
  }

  struct Popped {
    Job job;
    std::string tenant;  // give it back to done()
  };

  // The next job that may run, round robin over tenants; nullopt when
  // nothing waits, or every waiting tenant is at its cap.
  std::optional<Popped> pop() {
    for (std::size_t tries = ring_.size(); tries > 0; --tries) {
      Tenant* t = ring_.front();
      ring_.pop_front();
      Item& head = t->queued.front();
      if (head.cap > 0 && t->running >= head.cap) {
        ring_.push_back(t);  // at its cap: the others go first
        continue;
      }
      Popped out{std::move(head.job), t->name};
      t->queued.pop_front();
      --size_;
      ++t->running;
      if (t->queued.empty()) t->in_ring = false;
      else ring_.push_back(t);  // its next job waits for everyone else's turn
      return out;
    }
    return std::nullopt;
  }

  // A popped job of `tenant` finished.
  void done(const std::string& tenant) {
    auto it = tenants_.find(tenant);
    if (it == tenants_.end()) return;
    if (it->second->running > 0) --it->second->running;
    forget_if_idle(*it->second);
  }

  // Removes and returns every waiting job for which `expired` is true.
  std::vector<Job> take_if(const std::function<bool(const Job&)>& expired) {
    std::vector<Job> out;
    for (auto it = ring_.begin(); it != ring_.end();) {
      Tenant* t = *it;
      for (auto j = t->queued.begin(); j != t->queued.end();) {
        if (expired(j->job)) {
          out.push_back(std::move(j->job));
          j = t->queued.erase(j);
          --size_;
        } else {
          ++j;
        }
      }
      if (t->queued.empty()) {
        t->in_ring = false;
        it = ring_.erase(it);
        forget_if_idle(*t);
      } else {
        ++it;
      }
    }
    return out;
  }

  // Removes and returns every waiting job.
  std::vector<Job> take_all() {
    return take_if([](const Job&) { return true; });
  }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Tenants with a job waiting or running: the only ones it remembers.
  std::size_t tenants() const { return tenants_.size(); }
  // How many of `tenant`'s jobs wait.
  std::size_t queued(const std::string& tenant) const {
    auto it = tenants_.find(fair_ ? tenant : std::string());
    return it == tenants_.end() ? 0 : it->second->queued.size();
  }

 private:
  struct Item {
    Job job;
    std::size_t cap;
  };
  struct Tenant {
    std::string name;
    std::deque<Item> queued;
    std::size_t running = 0;
    bool in_ring = false;
  };

  Tenant& slot(const std::string& tenant) {
    auto& p = tenants_[tenant];
    if (!p) {
      p = std::make_unique<Tenant>();
      p->name = tenant;
    }
    return *p;
  }
  // A tenant with nothing waiting or running is forgotten: the map holds
  // only active tenants, however many have come and gone.
  void forget_if_idle(Tenant& t) {
    if (t.running != 0 || !t.queued.empty() || t.in_ring) return;
    std::string name = t.name;  // (erase must not read the key it destroys)
    tenants_.erase(name);
  }

  bool fair_;
  std::size_t max_queued_;
  std::unordered_map<std::string, std::unique_ptr<Tenant>> tenants_;
  std::deque<Tenant*> ring_;  // tenants with a waiting job, each once
  std::size_t size_ = 0;
};

}  // namespace sidecache::pg

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "sidecache/pg/fair_queue.hpp"

using sidecache::pg::FairQueue;
using Q = FairQueue<int>;

namespace {
// Pops everything that may run now, finishing each job at once.
std::vector<std::string> drain_tenants(Q& q) {
  std::vector<std::string> order;
  while (auto p = q.pop()) {
    order.push_back(p->tenant);
    q.done(p->tenant);
  }
  return order;
}
}  // namespace

TEST_CASE("fair queue: a tenant with 1000 queued fills delays another tenant's one fill by one turn, not 1000") {
  Q q;
  for (int i = 0; i < 1000; ++i) REQUIRE(q.push("noisy", 0, int(i)) == Q::Push::ok);
  REQUIRE(q.push("quiet", 0, 7) == Q::Push::ok);
  auto first = q.pop();
  auto second = q.pop();
  REQUIRE(first);
  REQUIRE(second);
  CHECK(first->tenant == "noisy");
  CHECK(second->tenant == "quiet");
  CHECK(second->job == 7);
  CHECK(q.size() == 999);
}

TEST_CASE("fair queue: round robin over tenants, each tenant's fills in their order") {
  Q q;
  for (int i = 0; i < 3; ++i) q.push("a", 0, 10 + i);
  for (int i = 0; i < 2; ++i) q.push("b", 0, 20 + i);
  q.push("c", 0, 30);
  std::vector<int> jobs;
  while (auto p = q.pop()) {
    jobs.push_back(p->job);
    q.done(p->tenant);
  }
  CHECK(jobs == std::vector<int>{10, 20, 30, 11, 21, 12});
  CHECK(q.empty());
  CHECK(q.tenants() == 0);  // idle tenants are forgotten
}

TEST_CASE("fair queue: a tenant at its running cap waits while others run, and runs again when one of its fills ends") {
  Q q;
  for (int i = 0; i < 4; ++i) q.push("a", 2, int(i));
  q.push("b", 2, 100);
  auto a1 = q.pop(), b1 = q.pop(), a2 = q.pop();
  REQUIRE(a1);
  REQUIRE(b1);
  REQUIRE(a2);
  CHECK(a1->tenant == "a");
  CHECK(b1->tenant == "b");
  CHECK(a2->tenant == "a");
  CHECK_FALSE(q.pop());  // a has 2 running; b has nothing left
  CHECK(q.size() == 2);
  q.done("a");
  auto a3 = q.pop();
  REQUIRE(a3);
  CHECK(a3->job == 2);
  CHECK_FALSE(q.pop());
}

TEST_CASE("fair queue: max_queued refuses a tenant's next fill and leaves it with the caller while other tenants still queue") {
  Q q(true, 2);
  int job = 1;
  CHECK(q.push("a", 0, std::move(job)) == Q::Push::ok);
  job = 2;
  CHECK(q.push("a", 0, std::move(job)) == Q::Push::ok);
  job = 3;
  CHECK(q.push("a", 0, std::move(job)) == Q::Push::tenant_full);
  CHECK(job == 3);
  CHECK(q.queued("a") == 2);
  job = 4;
  CHECK(q.push("b", 0, std::move(job)) == Q::Push::ok);
  // A running fill does not count as queued.
  auto p = q.pop();
  REQUIRE(p);
  CHECK(p->tenant == "a");
  job = 5;
  CHECK(q.push("a", 0, std::move(job)) == Q::Push::ok);
}

TEST_CASE("fair queue off: one FIFO, no caps and no per-tenant bound (the comparison mode)") {
  Q q(false, 1);
  for (int i = 0; i < 3; ++i) CHECK(q.push("a", 1, int(i)) == Q::Push::ok);
  q.push("b", 1, 9);
  std::vector<int> jobs;
  std::vector<Q::Popped> running;
  while (auto p = q.pop()) {
    jobs.push_back(p->job);
    running.push_back(std::move(*p));
  }
  CHECK(jobs == std::vector<int>{0, 1, 2, 9});
  for (auto& r : running) q.done(r.tenant);
  CHECK(q.tenants() == 0);
}

TEST_CASE("fair queue: expired fills are taken out of every tenant's queue, and the ring stays consistent") {
  Q q;
  for (int i = 0; i < 6; ++i) q.push(i % 2 ? "odd" : "even", 0, int(i));
  auto gone = q.take_if([](const int& j) { return j < 4; });
  CHECK(gone.size() == 4);
  CHECK(q.size() == 2);
  CHECK(drain_tenants(q) == std::vector<std::string>{"even", "odd"});
  auto rest = q.take_all();
  CHECK(rest.empty());
  CHECK(q.tenants() == 0);
}

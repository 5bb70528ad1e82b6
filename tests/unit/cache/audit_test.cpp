// The staleness audit's decisions: what counts as the same answer, and when
// a different one is stale rather than already covered by an invalidation.
#include <catch2/catch.hpp>

#include "sidecache/cache/audit.hpp"

using namespace sidecache;
using cache::AuditCase;
using cache::AuditOutcome;
using cache::Reread;

namespace {
AuditCase served(std::string body, std::uint64_t created, bool negative = false) {
  AuditCase c;
  c.header.created_us = created;
  if (negative) c.header.flags |= cache::ValueHeader::kNegative;
  else c.body = std::move(body);
  return c;
}
pg::FillResult answer(pg::FillResult::Status st, std::string json = {}) {
  pg::FillResult r;
  r.status = st;
  r.json = std::move(json);
  return r;
}
cache::Lookup seen(std::uint64_t watermark, cache::Lookup::Status st = cache::Lookup::Status::fresh) {
  cache::Lookup l;
  l.status = st;
  l.seen_watermark_us = watermark;
  return l;
}
using S = pg::FillResult::Status;
}  // namespace

TEST_CASE("audit compare: the same bytes, a cached 404 that is still 404, and failures that say nothing") {
  CHECK(cache::compare(served(R"({"a":1})", 10), answer(S::ok, R"({"a":1})")) == Reread::same);
  CHECK(cache::compare(served(R"({"a":1})", 10), answer(S::ok, R"({"a":2})")) == Reread::differs);
  CHECK(cache::compare(served(R"({"a":1})", 10), answer(S::not_found)) == Reread::differs);
  CHECK(cache::compare(served("", 10, true), answer(S::not_found)) == Reread::same);
  CHECK(cache::compare(served("", 10, true), answer(S::ok, "{}")) == Reread::differs);
  for (S st : {S::unavailable, S::timeout, S::error, S::behind})
    CHECK(cache::compare(served("{}", 10), answer(st)) == Reread::unknown);
}

TEST_CASE("audit decide: a difference is stale only when no covering invalidation was recorded since the fill began") {
  const std::uint64_t created = 1'000'000;
  AuditCase c = served("{}", created);
  CHECK(cache::decide(c, seen(0)) == AuditOutcome::Kind::stale);
  CHECK(cache::decide(c, seen(created - 1)) == AuditOutcome::Kind::stale);  // older than the fill: did not cover it
  CHECK(cache::decide(c, seen(created)) == AuditOutcome::Kind::covered);    // ties go to the invalidation
  CHECK(cache::decide(c, seen(created + 5)) == AuditOutcome::Kind::covered);
  // The key gone or past its expiry is no evidence either way; the watermarks are.
  CHECK(cache::decide(c, seen(0, cache::Lookup::Status::miss)) == AuditOutcome::Kind::stale);
  CHECK(cache::decide(c, seen(created + 5, cache::Lookup::Status::miss)) == AuditOutcome::Kind::covered);
  CHECK(cache::decide(c, seen(0, cache::Lookup::Status::error)) == AuditOutcome::Kind::unknown);
}

TEST_CASE("audit decide: a key invalidation's tombstone, already replaced by a newer fill, still covers the served value") {
  AuditCase c = served("{}", 1'000'000);
  c.header.soft_expiry_us = 2'000'000;
  cache::Lookup refilled = seen(0);
  refilled.header.created_us = 1'500'000;  // filled again before the served value expired
  CHECK(cache::decide(c, refilled) == AuditOutcome::Kind::covered);
  refilled.header.created_us = 2'500'000;  // after it expired: its TTL, not an invalidation, replaced it
  CHECK(cache::decide(c, refilled) == AuditOutcome::Kind::stale);
  refilled.header.created_us = 1'000'000;  // the very value served: nothing replaced it
  CHECK(cache::decide(c, refilled) == AuditOutcome::Kind::stale);
}

TEST_CASE("audit sampling: 0 samples nothing, 1 samples everything") {
  config::AuditConfig a;
  CHECK_FALSE(cache::Auditor::sampled(a, 0.0));
  a.sample = 1.0;
  CHECK(cache::Auditor::sampled(a, 0.0));
  CHECK(cache::Auditor::sampled(a, 0.999999));
  a.sample = 0.001;
  CHECK(cache::Auditor::sampled(a, 0.0005));
  CHECK_FALSE(cache::Auditor::sampled(a, 0.002));
}

#include <catch2/catch.hpp>

#include <random>

#include "sidecache/cache/early_refresh.hpp"

using sidecache::cache::xfetch_due;

TEST_CASE("XFetch: never long before expiry, always at or after it") {
  const std::uint64_t expiry = 10'000'000, delta = 100'000;  // a 100 ms fill
  // r = 1 (ln r = 0): only at expiry.
  CHECK_FALSE(xfetch_due(expiry - 1, expiry, delta, 1.0, 1.0));
  CHECK(xfetch_due(expiry, expiry, delta, 1.0, 1.0));
  CHECK(xfetch_due(expiry + 5, expiry, delta, 1.0, 0.9));
  // r = 1/e: ln r = -1, so the window is exactly delta * beta.
  const double r = std::exp(-1.0);
  CHECK(xfetch_due(expiry - delta, expiry, delta, 1.0, r));
  CHECK_FALSE(xfetch_due(expiry - delta - 1000, expiry, delta, 1.0, r));
  CHECK(xfetch_due(expiry - 2 * delta, expiry, delta, 2.0, r));  // beta widens it
  // Far from expiry even a tiny r rarely triggers: ln(1e-6) = -13.8.
  CHECK_FALSE(xfetch_due(expiry - 20 * delta, expiry, delta, 1.0, 1e-6));
  // beta <= 0 switches it off: plain expiry.
  CHECK_FALSE(xfetch_due(expiry - 1, expiry, delta, 0.0, 1e-9));
}

TEST_CASE("XFetch: the chance of an early refresh grows as expiry nears") {
  const std::uint64_t expiry = 10'000'000, delta = 100'000;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(std::nextafter(0.0, 1.0), 1.0);
  auto rate = [&](std::uint64_t before) {
    int hits = 0;
    for (int i = 0; i < 20000; ++i) hits += xfetch_due(expiry - before, expiry, delta, 1.0, u(rng));
    return hits / 20000.0;
  };
  double far = rate(300'000), mid = rate(100'000), near = rate(10'000);
  // P = exp(-before / (delta * beta)): e^-3, e^-1, e^-0.1.
  CHECK(far == Approx(std::exp(-3.0)).margin(0.02));
  CHECK(mid == Approx(std::exp(-1.0)).margin(0.02));
  CHECK(near == Approx(std::exp(-0.1)).margin(0.02));
}

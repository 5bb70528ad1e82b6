#include "sidecache/cache/random.hpp"

#include <cmath>
#include <random>

#include "sidecache/config/text.hpp"

namespace sidecache::cache {
namespace {
std::mt19937_64& rng() {
  thread_local std::mt19937_64 g{std::random_device{}()};
  return g;
}
}  // namespace

std::uint64_t random_u64() { return rng()(); }

double random_unit() {
  std::uniform_real_distribution<double> d(std::nextafter(0.0, 1.0), 1.0);
  return d(rng());
}

double random_share() {
  std::uniform_real_distribution<double> d(0.0, 1.0);
  return d(rng());
}

std::string random_token() {
  std::string token;
  token.reserve(32);
  config::append_hex(token, random_u64());
  config::append_hex(token, random_u64());
  return token;
}

}  // namespace sidecache::cache

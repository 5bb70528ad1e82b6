// Key encoding: the input is split into two (tenant, a, b) triples; different
// triples must give different keys, and each key decodes back to its triple
// (by hand and by parse_key); any text parse_key accepts builds back to itself.
#include <cstdint>
#include <vector>

#include "sidecache/cache/key.hpp"

namespace {

sidecache::config::Entity entity() {
  sidecache::config::Entity e;
  e.name = "pair";
  e.scope = sidecache::config::Scope::tenant;
  e.params = {{"org_id", sidecache::config::ParamType::slug, 256, true},
              {"a", sidecache::config::ParamType::string, 256, false},
              {"b", sidecache::config::ParamType::string, 256, false}};
  e.shape_hash = "0123abcd";
  return e;
}

std::vector<std::string> decode(const std::string& key) {
  std::vector<std::string> parts(1);
  for (std::size_t i = 3; i < key.size(); ++i) {  // after "sc:"
    if (key[i] == ':') parts.emplace_back();
    else if (key[i] == '%') {
      if (i + 2 >= key.size()) __builtin_trap();
      parts.back() += static_cast<char>(std::stoi(key.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else parts.back() += key[i];
  }
  return parts;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto e = entity();
  std::string in(reinterpret_cast<const char*>(data), size);
  // Six fields separated by 0xFF (a byte the encoder never needs to see).
  std::vector<std::string> f(1);
  for (char c : in) {
    if (static_cast<unsigned char>(c) == 0xFF) f.emplace_back();
    else f.back() += c;
  }
  f.resize(6);
  std::vector<std::string> x{f[0], f[1], f[2]}, y{f[3], f[4], f[5]};
  std::string kx = sidecache::cache::build_key("sc:", e, x), ky = sidecache::cache::build_key("sc:", e, y);
  if ((x == y) != (kx == ky)) __builtin_trap();
  auto parts = decode(kx);
  if (parts.size() != 6 || parts[1] != x[0] || parts[4] != x[1] || parts[5] != x[2]) __builtin_trap();
  // parse_key (the audit's way back from a key) agrees, and refuses what the
  // encoder would never write.
  auto parsed = sidecache::cache::parse_key("sc:", e, kx);
  if (!parsed || *parsed != x) __builtin_trap();
  if (auto raw = sidecache::cache::parse_key("sc:", e, "sc:" + in)) {
    if (sidecache::cache::build_key("sc:", e, *raw) != "sc:" + in) __builtin_trap();
  }
  return 0;
}

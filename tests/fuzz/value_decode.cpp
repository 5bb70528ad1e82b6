// The stored-value decoder, fed whatever Redis might hold.
#include <cstdint>

#include "sidecache/cache/value.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto h = sidecache::cache::decode_header(in);
  if (!h) return 0;
  // What decodes re-encodes to the same bytes: a tagged value's keys come
  // off its end whole, or not at all (a miss).
  std::string body(in.substr(sidecache::cache::kValueHeaderSize));
  std::vector<std::string> tags;
  if (h->tagged()) {
    std::string before = body;
    auto keys = sidecache::cache::take_tag_keys(body);
    if (!keys) {
      if (body != before) __builtin_trap();
      return 0;
    }
    tags = std::move(*keys);
    for (const auto& k : tags)
      if (k.empty() || k.find('\n') != std::string::npos) __builtin_trap();
  }
  std::string again = sidecache::cache::encode_value(*h, body, tags);
  if (again != in) __builtin_trap();
  (void)sidecache::cache::judge(*h, h->created_us, h->soft_expiry_us);
  return 0;
}

// The stored-value decoder, fed whatever Redis might hold.
#include <cstdint>

#include "sidecache/cache/value.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto h = sidecache::cache::decode_header(in);
  if (!h) return 0;
  // What decodes re-encodes to the same bytes.
  std::string again = sidecache::cache::encode_value(*h, in.substr(sidecache::cache::kValueHeaderSize));
  if (again != in) __builtin_trap();
  (void)sidecache::cache::judge(*h, h->created_us, h->soft_expiry_us);
  return 0;
}

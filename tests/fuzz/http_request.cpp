// Raw bytes -> Beast's parser with our limits -> auth check -> routing ->
// answer. Everything sidecache does with a request before any I/O.
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cstdint>

#include "fixture.hpp"
#include "sidecache/http/router.hpp"

namespace bhttp = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& cfg = sidecache::fuzz::fixture();
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(8192 + 4096 + 64);
  parser.body_limit(64 * 1024);
  parser.eager(true);
  boost::system::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (ec || !parser.is_header_done()) return 0;
  auto& req = parser.get();
  std::string_view auth;
  if (auto it = req.find(bhttp::field::authorization); it != req.end()) auth = it->value();
  sidecache::http::Route r;
  if (auto denied = sidecache::http::check_auth(cfg, req.target(), auth)) r.answer = *denied;
  else r = sidecache::http::route(cfg, req.method_string(), req.target(), req.body());
  // Every answer we make is JSON with "error" when it is not a 2xx.
  if (r.kind == sidecache::http::Route::Kind::answer) {
    auto v = boost::json::parse(r.answer.body);
    if (r.answer.status >= 400 && !v.as_object().contains("error")) __builtin_trap();
  }
  if (r.kind == sidecache::http::Route::Kind::entity_get && r.request.key.rfind(cfg.key_prefix, 0) != 0) __builtin_trap();
  return 0;
}

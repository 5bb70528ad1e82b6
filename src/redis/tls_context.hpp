#pragma once
// The OpenSSL client context for a Redis TLS configuration, built once per
// process for each distinct set of TLS settings and shared by every
// connection (an SSL_CTX may be shared across threads once set up).
#include <memory>
#include <string>

#include "sidecache/config/config.hpp"

namespace boost::asio::ssl {
class context;
}

namespace sidecache::redis {

// nullptr with `why` set when the files cannot be used.
std::shared_ptr<boost::asio::ssl::context> tls_context(const config::RedisConfig& cfg, std::string& why);

// Verifies the peer's certificate for `cfg.tls_name()` on the SSL handle
// (SNI, and the DNS or IP name checked during the chain's verification).
// Returns "" or why it cannot be set.
std::string tls_prepare(void* ssl_handle, const config::RedisConfig& cfg);

// Why a handshake or a read failed, in words an operator can act on: the
// verification error OpenSSL recorded and what to set.
std::string tls_failure(void* ssl_handle, const std::string& error, const config::RedisConfig& cfg);

}  // namespace sidecache::redis

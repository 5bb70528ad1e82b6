#pragma once
// Redis over TLS: the settings checked at start, before any port is bound.
#include <string>

#include "sidecache/config/config.hpp"

namespace sidecache::redis {

// "" when TLS is off, or its context can be built from the settings (the CA
// file parses, the client certificate and key load and match); else what is
// wrong and what to set.
std::string tls_setup_problem(const config::RedisConfig& cfg);

}  // namespace sidecache::redis

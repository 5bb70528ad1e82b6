#pragma once
// A one-off, blocking look at the configured Redis, for `sidecache check
// --connect`: connect (connect_timeout), set the connection up exactly as
// the daemon's connections do (setup_commands), PING.
#include <string>
#include <vector>

#include "sidecache/config/config.hpp"

namespace sidecache::redis {

// What every new connection sends first: AUTH (when a password is set) and
// SELECT (when db is not 0). The daemon's connections and probe() share it.
std::vector<std::vector<std::string>> setup_commands(const config::RedisConfig& cfg);

// "" when Redis answered PING after the setup, else what went wrong.
std::string probe(const config::RedisConfig& cfg);

}  // namespace sidecache::redis

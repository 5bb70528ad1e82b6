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

// "" when Redis answered PING after the setup and is the kind of server
// redis.mode says (a cluster node in cluster mode, whose cluster serves
// every slot; else not one), else what went wrong.
// `server`, when given, is set to the host:port that answered (in sentinel
// mode: the master the sentinels named).
std::string probe(const config::RedisConfig& cfg, std::string* server = nullptr);

// At start, before anything is bound: "" unless Redis answers and is not
// the kind redis.mode says (a cluster node off cluster mode, or the
// reverse), then what to set.
// Unreachable is not a problem here: the daemon serves from PostgreSQL.
std::string topology_problem(const config::RedisConfig& cfg);

}  // namespace sidecache::redis

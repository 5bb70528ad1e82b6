#pragma once
// The command line's one-shot commands (everything but serving).
#include <string>
#include <vector>

#include "sidecache/config/config.hpp"

namespace sidecache::app {

// health: GET /healthz on the configured listener (TCP v4 or v6, or the
// unix socket), 2 s at most; 0 when it answers 200.
int health(const config::Config& cfg);
// check --connect: Redis answers PING after AUTH/SELECT, PostgreSQL accepts
// a connection and every entity's SQL prepares. Returns the problems found.
int check_connect(const config::Config& cfg);
// key: the Redis key of ENTITY with name=value params, as a GET would build it.
int print_key(const config::Config& cfg, const std::vector<std::string>& args);
// audit: reads up to `sample` keys of each entity (or of `entity`) from
// Redis, re-reads each from PostgreSQL, waits audit.grace, and prints a
// table (entity, keys checked, stale, oldest stale age). 0: nothing stale;
// 1: something is; 2: Redis or PostgreSQL did not answer.
int audit(const config::Config& cfg, const std::string& entity, std::size_t sample);
// Every problem of a configuration that did not load; returns exit status 2.
int print_problems(const config::LoadError& e);

}  // namespace sidecache::app

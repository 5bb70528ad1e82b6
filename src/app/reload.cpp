// SIGHUP: load the configuration again and swap the snapshot new requests
// take; what cannot change without a restart is kept and named.
#include <spdlog/spdlog.h>

#include "sidecache/app/service.hpp"

namespace sidecache::app {

bool Service::reload(const std::string& path) {
  std::shared_ptr<config::Config> fresh;
  try {
    fresh = std::make_shared<config::Config>(config::load(path));
  } catch (const config::LoadError& e) {
    spdlog::error("reload refused, the running configuration stays: {}", e.what());
    return false;
  }
  SnapshotPtr old = current();
  const config::Config& was = *old->cfg;
  // What the running process cannot change: keep it, and say so.
  auto keep = [&](bool changed, const char* what) {
    if (changed) spdlog::warn("reload: {} changed but cannot change without a restart; keeping the running value", what);
  };
  keep(fresh->listen.text != was.listen.text, "listen");
  keep(fresh->workers != was.workers, "workers");
  keep(fresh->redis.url != was.redis.url || fresh->redis.timeout != was.redis.timeout ||
           fresh->redis.connect_timeout != was.redis.connect_timeout ||
           fresh->redis.breaker_failures != was.redis.breaker_failures ||
           fresh->redis.breaker_open_timeout != was.redis.breaker_open_timeout ||
           fresh->redis.breaker_half_open_probes != was.redis.breaker_half_open_probes,
       "redis");
  keep(fresh->postgres.dsn != was.postgres.dsn || fresh->postgres.pool_size != was.postgres.pool_size ||
           fresh->postgres.queue_limit != was.postgres.queue_limit ||
           fresh->postgres.statement_timeout != was.postgres.statement_timeout ||
           fresh->postgres.connect_timeout != was.postgres.connect_timeout,
       "postgres");
  keep(fresh->http.max_header_bytes != was.http.max_header_bytes || fresh->http.max_target_bytes != was.http.max_target_bytes ||
           fresh->http.max_body_bytes != was.http.max_body_bytes || fresh->http.header_timeout != was.http.header_timeout ||
           fresh->http.idle_timeout != was.http.idle_timeout,
       "http");
  keep(fresh->invalidation.channel != was.invalidation.channel, "invalidation.channel");
  keep(fresh->shutdown_timeout != was.shutdown_timeout, "shutdown_timeout");
  keep(fresh->listens() != was.listens(), "whether any entity has invalidate_on (the LISTEN connection)");
  keep(fresh->l1.max_bytes != was.l1.max_bytes, "l1.max_bytes");
  keep(fresh->key_prefix != was.key_prefix && was.l1.enabled(), "key_prefix (its L1 invalidation channel)");
  fresh->listen = was.listen;
  fresh->workers = was.workers;
  fresh->redis = was.redis;
  fresh->postgres = was.postgres;
  fresh->http = was.http;
  fresh->invalidation.channel = was.invalidation.channel;
  fresh->shutdown_timeout = was.shutdown_timeout;
  fresh->l1.max_bytes = was.l1.max_bytes;
  if (was.l1.enabled()) fresh->key_prefix = was.key_prefix;
  spdlog::set_level(spdlog::level::from_str(fresh->log_level));
  std::size_t n = fresh->entities.size();
  std::atomic_store(&snap_, cache::make_snapshot(std::move(fresh), old->generation + 1));
  spdlog::info("reloaded {}: {} entities (configuration generation {})", path, n, old->generation + 1);
  return true;
}

}  // namespace sidecache::app

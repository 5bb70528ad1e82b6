// SIGHUP: load the configuration again and swap the snapshot new requests
// take; what cannot change without a restart (the settings table says which)
// is kept and named.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "sidecache/app/service.hpp"
#include "sidecache/config/settings.hpp"

namespace sidecache::app {

bool Service::reload(const std::string& path) {
  std::shared_ptr<config::Config> fresh;
  try {
    fresh = std::make_shared<config::Config>(config::load(path));
  } catch (const config::LoadError& e) {
    spdlog::error("reload refused, the running configuration stays: {}", e.what());
    return false;
  }
  for (const auto& w : fresh->warnings) spdlog::warn("config: {}", w.to_string());
  SnapshotPtr old = current();
  const config::Config& was = *old->cfg;
  auto warn = [](const std::string& what) {
    spdlog::warn("reload: {} changed but cannot change without a restart; keeping the running value", what);
  };
  for (const auto& key : config::keep_restart_settings(*fresh, was)) warn(key);
  // Two things the table cannot see: whether the LISTEN connection exists
  // (it opens at start when some entity has invalidate_on), and the L1
  // channel, which is named after key_prefix.
  if (fresh->listens() != was.listens()) warn("whether any entity has invalidate_on (the LISTEN connection)");
  if (was.l1.enabled() && fresh->key_prefix != was.key_prefix) {
    warn("key_prefix (its L1 invalidation channel)");
    fresh->key_prefix = was.key_prefix;
  }
  spdlog::set_level(spdlog::level::from_str(fresh->log_level));
  for (const auto& e : fresh->entities) metrics_.declare_entity(e.name);
  // New or changed SQL (its statement name carries its hash) is prepared
  // now, so a typo is reported at the reload, not at the first request.
  std::vector<pg::Statement> check;
  for (const auto& e : fresh->entities) {
    bool known = std::any_of(was.entities.begin(), was.entities.end(),
                             [&](const config::Entity& w) { return w.statement == e.statement; });
    if (!known) check.push_back(cache::statement_of(e));
    bool batch_known = !e.batch || std::any_of(was.entities.begin(), was.entities.end(), [&](const config::Entity& w) {
      return w.batch && w.batch->statement == e.batch->statement;
    });
    if (!batch_known) check.push_back(cache::batch_statement_of(e));
  }
  pool_.prepare_in_background(std::move(check));
  std::size_t n = fresh->entities.size();
  std::atomic_store(&snap_, cache::make_snapshot(std::move(fresh), old->generation + 1));
  spdlog::info("reloaded {}: {} entities (configuration generation {})", path, n, old->generation + 1);
  return true;
}

}  // namespace sidecache::app

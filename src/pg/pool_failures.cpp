// The pool's bookkeeping of what went wrong with entities' SQL (for /readyz
// and the logs), and of a pooler found in front of PostgreSQL.
#include <spdlog/spdlog.h>

#include "sidecache/pg/pool.hpp"

namespace sidecache::pg {

void Pool::pooler_detected(const Statement& st, const std::string& state) {
  unnamed_.store(true, std::memory_order_relaxed);
  if (clash_logged_.exchange(true)) return;
  spdlog::error("postgres: a named prepared statement failed [{}] for entity '{}': PostgreSQL is behind a pooler in "
                "transaction or statement mode (PgBouncer, RDS Proxy); set postgres.prepared: off. Fills run unnamed "
                "from now on, so reads keep working",
                state, st.entity);
}

void Pool::entity_failed(const Statement& st, const std::string& error, bool log) {
  std::lock_guard lock(failing_mu_);
  any_failing_ = true;
  auto [it, fresh] = failing_.try_emplace(st.entity, error);
  if (!fresh && it->second == error) return;
  it->second = error;
  if (log) spdlog::error("postgres: entity '{}' ({}): {}", st.entity, st.file, error);
}

void Pool::forget_failure(const std::string& entity) {
  if (!any_failing_.load(std::memory_order_relaxed)) return;
  std::lock_guard lock(failing_mu_);
  failing_.erase(entity);
  any_failing_ = !failing_.empty();
}

void Pool::prepare_in_background(std::vector<Statement> statements) {
  for (auto& st : statements) {
    st.prepare_only = true;
    submit(std::move(st), {}, [](FillResult) {});
  }
}

std::vector<std::pair<std::string, std::string>> Pool::failing_entities() const {
  std::lock_guard lock(failing_mu_);
  return {failing_.begin(), failing_.end()};
}

}  // namespace sidecache::pg

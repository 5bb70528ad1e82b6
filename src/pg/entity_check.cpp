#include "sidecache/pg/entity_check.hpp"

#include <unistd.h>

#include <cctype>
#include <pqxx/pqxx>
#include <sstream>

#include "sidecache/pg/listen_probe.hpp"
#include "sidecache/pg/pool.hpp"

namespace sidecache::pg {

bool plan_filters_by(const std::string& plan, std::size_t n) {
  static const char* kConditions[] = {"Filter:", "Cond:"};  // covers Join/One-Time Filter, Index/Hash/Merge/Recheck Cond
  std::string param(1, '$');  // (not "$" + to_string: gcc 12 -Wrestrict false positive at -O3)
  param += std::to_string(n);
  std::istringstream lines(plan);
  std::string line;
  while (std::getline(lines, line)) {
    bool condition = false;
    for (const char* c : kConditions) condition = condition || line.find(c) != std::string::npos;
    if (!condition) continue;
    for (std::size_t at = line.find(param); at != std::string::npos; at = line.find(param, at + 1)) {
      std::size_t after = at + param.size();
      if (after == line.size() || !std::isdigit(static_cast<unsigned char>(line[after]))) return true;
    }
  }
  return false;
}

std::vector<std::string> check_entities(const config::Config& cfg) {
  std::vector<std::string> problems;
  try {
    pqxx::connection conn(conninfo_of(cfg.postgres));
    int i = 0;
    for (const auto& e : cfg.entities) {
      // Unique per run: a statement left behind on a pooled server
      // connection by an earlier failed check does not clash.
      std::string name = "sidecache_check_" + std::to_string(::getpid()) + "_" + std::to_string(i++);
      // The entity's query, and its batch form's.
      auto check = [&](const std::string& query, const std::vector<std::size_t>& bind, const std::string& where) {
        try {
          // One transaction per query, so that behind a pooler in transaction
          // mode every statement meets the same server session.
          pqxx::work tx(conn);
          // The plan of any parameter values: the one that must filter.
          tx.exec("SET LOCAL plan_cache_mode = force_generic_plan");
          tx.exec("PREPARE " + name + " AS " + query);
          if (e.scope == config::Scope::tenant) {
            std::string nulls;
            for (std::size_t k = 0; k < bind.size(); ++k) nulls += k ? ", NULL" : "NULL";
            std::string plan;
            for (const auto& row : tx.exec("EXPLAIN (VERBOSE, COSTS OFF) EXECUTE " + name + (nulls.empty() ? "" : "(" + nulls + ")")))
              plan += std::string(row[0].c_str()) + "\n";
            bool filters = false;
            for (std::size_t k = 0; k < bind.size(); ++k)
              if (bind[k] == 0 && plan_filters_by(plan, k + 1)) filters = true;
            if (!filters)
              problems.push_back(where + "the tenant param :" + e.params.at(0).name +
                                 " filters no rows: PostgreSQL's plan uses it in no WHERE, JOIN or ON condition. A "
                                 "tenant-scoped entity must select only the tenant's rows (WHERE org_id = :" +
                                 e.params.at(0).name + "), or be 'scope: global'");
          }
          tx.exec("DEALLOCATE " + name);
        } catch (const std::exception& ex) {
          problems.push_back(where + "its SQL does not prepare: " + one_line_sql_error(ex.what()));
        }
      };
      check(e.query, e.bind, e.file + ": entity '" + e.name + "': ");
      if (e.batch) check(e.batch->query, e.batch->bind, e.file + ": entity '" + e.name + "' (batch.sql): ");
    }
  } catch (const std::exception& ex) {
    problems.push_back("postgres: " + config::mask_secrets(ex.what()));
    return problems;
  }
  if (cfg.listens()) {
    std::string what = cfg.postgres.listen_dsn.empty() ? "postgres.dsn" : "postgres.listen_dsn";
    try {
      pqxx::connection listening(conninfo_of(cfg.postgres.listen_conninfo(), cfg.postgres));
      std::string why = probe_notifications(listening, conninfo_of(cfg.postgres), std::chrono::milliseconds(2000));
      if (!why.empty()) problems.push_back(what + ": " + listen_advice(why));
    } catch (const std::exception& ex) {
      problems.push_back(what + " (LISTEN): " + config::mask_secrets(ex.what()));
    }
  }
  return problems;
}

}  // namespace sidecache::pg

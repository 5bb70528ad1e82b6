// sidecache: the caching sidecar daemon. Loads and checks the whole config
// before binding anything, then serves until SIGTERM/SIGINT and drains.
#include <spdlog/spdlog.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <functional>
#include <iostream>
#include <pthread.h>
#include <thread>

#include "sidecache/app/commands.hpp"
#include "sidecache/app/logging.hpp"


#include "sidecache/app/service.hpp"
#include "sidecache/redis/probe.hpp"
#include "sidecache/redis/tls.hpp"
#include "sidecache/config/config.hpp"
#include "sidecache/config/settings.hpp"
#include "sidecache/http/server.hpp"
#include "sidecache/pg/triggers.hpp"
#include "sidecache/version.hpp"

namespace net = boost::asio;
using namespace sidecache;

namespace {

constexpr const char* kUsage = R"(sidecache: a caching sidecar for multi-tenant SaaS backends

Usage:
  sidecache --config PATH           run the daemon
  sidecache check --config PATH     validate the configuration and exit (non-zero on errors)
  sidecache check --config PATH --connect
                                    also reach Redis and PostgreSQL and prepare every entity's SQL
  sidecache key --config PATH ENTITY name=value...
                                    print the Redis key a request would use (for redis-cli)
  sidecache triggers --config PATH [--drop]
                                    print the SQL that installs (or removes) the invalidate_on triggers
  sidecache health --config PATH    ask the running daemon's GET /healthz (exit 0 when it answers 200);
                                    for container HEALTHCHECKs, without curl in the image
  sidecache audit --config PATH [--entity NAME] [--sample N]
                                    re-read N cached keys of each entity (default 100) from PostgreSQL and
                                    list the stale ones; exit 1 when any is stale
  sidecache settings                print every setting of the main file as a Markdown table
                                    (the reference in docs/configuration.md is this table)
  sidecache --help | --version

Environment (overrides the config file):
  SIDECACHE_LISTEN, SIDECACHE_REDIS_URL, SIDECACHE_POSTGRES_DSN

Signals:
  SIGHUP            reload the config (entities, TTLs, log level...; docs/configuration.md marks what reloads)
  SIGTERM, SIGINT   drain: /readyz turns 503, requests in flight finish (at most shutdown_timeout), exit 0

Exit status:
  0 ok, 1 cannot listen / health check failed, 2 invalid configuration or unreachable
  Redis/PostgreSQL (check --connect), 64 bad command line

Docs: README.md and docs/ (configuration, api, operations, failure-modes).
)";

int serve(std::shared_ptr<const config::Config> cfg_ptr, const std::string& config_path) {
  const config::Config& cfg = *cfg_ptr;  // the settings a reload cannot change
  app::init_logging(cfg.log_level, cfg.log_json);
  for (const auto& w : cfg.warnings) spdlog::warn("config: {}", w.to_string());
  // A Redis that answers but cannot be used is refused now, not found out
  // by every read missing.
  if (std::string why = redis::tls_setup_problem(cfg.redis); !why.empty()) {
    spdlog::critical("redis {}: {}", config::mask_secrets(cfg.redis.url), why);
    return 2;
  }
  if (cfg.redis.tls() && !cfg.redis.tls_verify)
    spdlog::warn("redis.tls.verify is false: the Redis server's certificate is not checked, so anyone on the path can "
                 "read and change the cache; set redis.tls.ca_file and remove verify: false");
  if (std::string why = redis::topology_problem(cfg.redis); !why.empty()) {
    spdlog::critical("redis {}: {}", config::mask_secrets(cfg.redis.url), why);
    return 2;
  }
  std::vector<std::unique_ptr<net::io_context>> contexts;
  std::vector<net::io_context*> workers;
  for (unsigned i = 0; i < cfg.workers; ++i) {
    contexts.push_back(std::make_unique<net::io_context>(1));
    workers.push_back(contexts.back().get());
  }
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
  for (auto* w : workers) guards.emplace_back(w->get_executor());

  app::Service service(cfg_ptr, workers);
  http::Server server(cfg, service, workers);
  try {
    server.start();
  } catch (const boost::system::system_error& e) {
    // The code's message only: what() carries a Boost source path and function.
    bool in_use = e.code() == boost::asio::error::address_in_use;
    spdlog::critical("cannot listen on {}: {}{}", cfg.listen.text, e.code().message(),
                     in_use ? "; another process listens there: stop it, or set listen (or SIDECACHE_LISTEN) to a free "
                              "address"
                            : "");
    return 1;
  } catch (const std::exception& e) {
    spdlog::critical("cannot listen on {}: {}", cfg.listen.text, e.what());
    return 1;
  }
  service.start();
  spdlog::info("sidecache {} listening on {} ({} workers, {} entities, redis {}, postgres pool {})", kVersion,
               cfg.listen.is_unix ? "unix:" + cfg.listen.path
                                  : cfg.listen.host + ":" + std::to_string(server.port()),
               cfg.workers, cfg.entities.size(), config::mask_secrets(cfg.redis.url), cfg.postgres.pool_size);

  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < workers.size(); ++i)
    threads.emplace_back([w = workers[i], i] {
      // Named for top -H, perf and gdb: "sc-worker-0", ...
      pthread_setname_np(pthread_self(), ("sc-worker-" + std::to_string(i)).c_str());
      w->run();
    });

  // Signals are waited for on the main thread's own context: SIGHUP
  // reloads, SIGINT/SIGTERM drain and stop.
  net::io_context main_io;
  net::signal_set signals(main_io, SIGINT, SIGTERM, SIGHUP);
  int received = 0;
  std::function<void(const boost::system::error_code&, int)> on_signal = [&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      spdlog::info("received SIGHUP; reloading {}", config_path);
      service.reload(config_path);
      signals.async_wait(on_signal);
      return;
    }
    received = sig;
  };
  signals.async_wait(on_signal);
  main_io.run();
  service.set_draining();
  spdlog::info("received {}; draining (at most {} ms)", received == SIGINT ? "SIGINT" : "SIGTERM",
               cfg.shutdown_timeout.count());
  server.drain();
  auto deadline = std::chrono::steady_clock::now() + cfg.shutdown_timeout;
  while (server.connections() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (server.connections() > 0) spdlog::warn("{} connection(s) still open at the drain deadline", server.connections());
  service.stop();
  guards.clear();
  for (auto* w : workers) w->stop();
  for (auto& t : threads) t.join();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check = false, triggers = false, drop = false, connect = false, key = false, healthcheck = false;
  bool audit = false;
  std::string audit_entity;
  std::size_t audit_sample = 100;
  std::vector<std::string> rest;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (a == "--version") {
      std::cout << "sidecache " << kVersion << "\n";
      return 0;
    }
    if (a == "settings" && i == 1 && argc == 2) {
      std::cout << config::settings_markdown();
      return 0;
    }
    if (a == "check" && i == 1) {
      check = true;
    } else if (a == "triggers" && i == 1) {
      triggers = true;
    } else if (a == "--drop" && triggers) {
      drop = true;
    } else if (a == "audit" && i == 1) {
      audit = true;
    } else if (a == "--entity" && audit && i + 1 < argc) {
      audit_entity = argv[++i];
    } else if (a == "--sample" && audit && i + 1 < argc) {
      std::string n = argv[++i];
      char* end = nullptr;
      unsigned long v = std::strtoul(n.c_str(), &end, 10);
      if (n.empty() || *end != '\0' || v == 0 || v > 1000000) {
        std::cerr << "sidecache audit: --sample takes a number of keys from 1 to 1000000, not '" << n << "'\n";
        return 64;
      }
      audit_sample = v;
    } else if (a == "health" && i == 1) {
      healthcheck = true;
    } else if (a == "key" && i == 1) {
      key = true;
    } else if (a == "--connect" && check) {
      connect = true;
    } else if (key && a.rfind("--", 0) != 0) {
      rest.push_back(a);
    } else if ((a == "--config" || a == "-c") && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      config_path = a.substr(9);
    } else {
      std::cerr << "sidecache: unknown argument '" << a << "'\n\n" << kUsage;
      return 64;
    }
  }
  if (config_path.empty()) {
    std::cerr << "sidecache: --config PATH is required\n\n" << kUsage;
    return 64;
  }
  config::Config cfg;
  try {
    cfg = config::load(config_path);
  } catch (const config::LoadError& e) {
    return app::print_problems(e);
  }
  if (key) return app::print_key(cfg, rest);
  if (audit) return app::audit(cfg, audit_entity, audit_sample);
  if (healthcheck) return app::health(cfg);
  if (triggers) {
    std::cout << pg::trigger_sql(cfg, drop);
    return 0;
  }
  if (check) {
    for (const auto& w : cfg.warnings) std::cout << "  warning: " << w.to_string() << "\n";
    std::cout << "sidecache: configuration " << config_path << " is valid (" << cfg.entities.size() << " entities)\n";
    if (connect) {
      int n = app::check_connect(cfg);
      if (n) {
        std::cerr << "sidecache: " << n << " problem(s) checking against Redis and PostgreSQL\n";
        return 2;
      }
    }
    return 0;
  }
  return serve(std::make_shared<const config::Config>(std::move(cfg)), config_path);
}

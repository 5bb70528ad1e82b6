#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <spdlog/spdlog.h>

int main(int argc, char* argv[]) {
  // spdlog's registry is a function-local static inside libspdlog.so, which
  // is not built with ThreadSanitizer: when two test threads log first, TSan
  // cannot see the static's guard and reports its construction as a race
  // with the first read of the logger's level. Building it here, before any
  // test starts a thread, orders it before every use (as the daemon's main
  // does when it sets up logging).
  spdlog::default_logger_raw()->set_level(spdlog::get_level());
  return Catch::Session().run(argc, argv);
}

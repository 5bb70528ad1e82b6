#pragma once
#include <string>

namespace sidecache::app {

// Sets up the process-wide spdlog logger (stderr, one line per event).
void init_logging(const std::string& level);

}  // namespace sidecache::app

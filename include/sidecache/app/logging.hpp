#pragma once
#include <string>
#include <string_view>

namespace sidecache::app {

// Sets up the process-wide spdlog logger on stderr: one line per event, as
// text or as one JSON object per line ({"time","level","msg"}).
void init_logging(const std::string& level, bool json);

}  // namespace sidecache::app

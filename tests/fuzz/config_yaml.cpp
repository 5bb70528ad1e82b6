// Config and entity YAML: any bytes either load or give problems with a file
// and a message, never a crash. The input is split into a main file and one
// entity file at the first "\n---8<---\n".
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>

#include "sidecache/config/config.hpp"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const fs::path dir = [] {
    auto d = fs::temp_directory_path() / ("sidecache-fuzz-" + std::to_string(::getpid()));
    fs::create_directories(d / "entities");
    return d;
  }();
  std::string in(reinterpret_cast<const char*>(data), size);
  std::string main_text = in, entity_text;
  if (auto cut = in.find("\n---8<---\n"); cut != std::string::npos) {
    main_text = in.substr(0, cut);
    entity_text = in.substr(cut + 10);
  }
  std::ofstream(dir / "sidecache.yaml", std::ios::trunc) << main_text;
  std::ofstream(dir / "entities" / "e.yaml", std::ios::trunc) << entity_text;
  auto env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  try {
    sidecache::config::load((dir / "sidecache.yaml").string(), env);
  } catch (const sidecache::config::LoadError& e) {
    for (const auto& p : e.problems())
      if (p.message.empty() || p.file.empty()) __builtin_trap();
  }
  return 0;
}

#pragma once
// A folder of this fuzzing process's own under the system temp dir, for targets whose readers
// take paths: each input is written there as a file. One folder per process (the first
// caller names it).
#include <unistd.h>

#include <filesystem>
#include <string>

namespace rlxf_fuzz {

inline const std::filesystem::path& scratch_dir(const char* target) {
  static const std::filesystem::path dir = [&] {
    auto d = std::filesystem::temp_directory_path() / (std::string("rlxf_") + target + "_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

}  // namespace rlxf_fuzz

#pragma once
// Scratch folders for tests: one per process (the pid keeps parallel ctest runs apart) and per test.
#include <unistd.h>

#include <filesystem>
#include <string>

namespace paraplan::testing {

// An empty folder <tmp>/<prefix>-<pid>/<name>: whatever an earlier run left there is removed first.
inline std::filesystem::path fresh_dir(const std::string& prefix, const std::string& name) {
  const std::filesystem::path d =
      std::filesystem::temp_directory_path() / (prefix + "-" + std::to_string(getpid())) / name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

}  // namespace paraplan::testing

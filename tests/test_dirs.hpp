#pragma once
// Scratch folders for tests: one per process (the pid keeps parallel ctest runs apart) and per test.
// scratch_cleanup.cpp removes a process's when all its tests passed.
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

namespace paraplan::testing {

// An empty folder <tmp>/<prefix>-<pid>/<name>: whatever an earlier run left there is removed first.
inline std::filesystem::path fresh_dir(const std::string& prefix, const std::string& name) {
  const std::filesystem::path d =
      std::filesystem::temp_directory_path() / (prefix + "-" + std::to_string(getpid())) / name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

// Removes the scratch entries of process `pid` under `dir`: the names "paraplan-<what>-<pid>", alone
// or followed by '-' or '.' ("paraplan-demo-<pid>-lenet.sqlite"), which is how every test helper names
// them. Another process's ("paraplan-runs-<pid>7") and other names stay. Returns how many it removed.
inline int remove_scratch(const std::filesystem::path& dir, long pid) {
  std::string token = "-";  // appended, not "-" + to_string: GCC 12 -Wrestrict false positive (PR 105651)
  token += std::to_string(pid);
  // Listed first, removed after: what a directory iterator shows of entries removed while it runs is
  // unspecified.
  std::vector<std::filesystem::path> ours;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind("paraplan-", 0) != 0) continue;
    for (size_t at = name.find(token); at != std::string::npos; at = name.find(token, at + 1)) {
      const size_t after = at + token.size();
      if (after == name.size() || name[after] == '-' || name[after] == '.') {
        ours.push_back(it->path());
        break;
      }
    }
  }
  int removed = 0;
  for (const std::filesystem::path& p : ours) removed += std::filesystem::remove_all(p, ec) > 0 && !ec;
  return removed;
}

}  // namespace paraplan::testing

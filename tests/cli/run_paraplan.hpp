#pragma once
// Running the paraplan binary from a test: exit code and output (stdout and stderr together).
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace clitest {

struct Result {
  int code;
  std::string out;  // stdout and stderr together
};

inline Result run(const std::string& args) {
  const std::string cmd = std::string(PARAPLAN_BIN) + " " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  while (size_t n = fread(buf.data(), 1, buf.size(), pipe)) out.append(buf.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

inline std::string example() { return std::string(PARAPLAN_SOURCE_DIR) + "/data/examples/llama3-8b.json"; }

inline std::string write_temp(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / name;
  std::ofstream(path) << text;
  return path.string();
}

}  // namespace clitest

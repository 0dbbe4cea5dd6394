#pragma once
// Running commands from the executor tests: a shell command's output and exit code, a command in the
// background in its own process group, and free ports.
#include <sys/wait.h>
#include <unistd.h>

#include <signal.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "paraplan/exec/local_port.hpp"

namespace paraplan::test {

struct Result {
  int code = -1;
  std::string out;  // stdout and stderr together
};

inline Result shell(const std::string& cmd) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  Result r;
  std::array<char, 4096> buf{};
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// The rendezvous port of a test's ranks: as `paraplan run` picks one (local_port.hpp).
inline int free_port() { return paraplan::exec::free_local_port(); }

// A shell command in the background, its output in a file.
struct Child {
  pid_t pid = -1;
  std::filesystem::path log;
  static Child start(const std::string& cmd, const std::filesystem::path& log) {
    Child c;
    c.log = log;
    c.pid = fork();
    if (c.pid == 0) {
      setpgid(0, 0);  // its own group: killing it kills the worker it became (exec) or started
      execl("/bin/sh", "sh", "-c", ("exec env " + cmd + " >" + log.string() + " 2>&1").c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    return c;
  }
  // Exit code, or -signal; -1000 when it is still running after `limit` (then it is killed).
  int wait(std::chrono::seconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > end) {
        kill(-pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1000;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }
  std::string output() const {
    std::ifstream in(log);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
};

}  // namespace paraplan::test

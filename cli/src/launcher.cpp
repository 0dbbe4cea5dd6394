#include "launcher.hpp"

#include "paraplan/exec/local_port.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace paraplan::cli {

namespace {

// argv / envp arrays that own their strings.
struct CStrings {
  std::vector<std::string> s;
  std::vector<char*> p;
  char** data() {
    p.clear();
    for (auto& x : s) p.push_back(x.data());
    p.push_back(nullptr);
    return p.data();
  }
};

CStrings environment_for(const WorkerProcess& w) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e;
    const size_t eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : w.env) env[k] = v;
  CStrings out;
  for (const auto& [k, v] : env) out.s.push_back(k + "=" + v);
  return out;
}

CStrings argv_for(const WorkerProcess& w) {
  CStrings out;
  out.s.push_back(w.exe);
  for (const auto& a : w.args) out.s.push_back(a);
  return out;
}

struct Running {
  pid_t pid = -1;
  int fds[2] = {-1, -1};       // stdout, stderr read ends
  std::string partial[2];      // incomplete lines
  std::string last_error;      // last stderr line
  bool exited = false;
  int status = 0;
};

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
                                  strsignal(WTERMSIG(status)) + ")";
  return "stopped";
}

void drain(Running& r, int rank, int which, const LineHandler& on_line, bool flush) {
  char buf[4096];
  for (;;) {
    const ssize_t n = read(r.fds[which], buf, sizeof buf);
    if (n <= 0) break;
    r.partial[which].append(buf, static_cast<size_t>(n));
  }
  std::string& p = r.partial[which];
  size_t start = 0, nl;
  while ((nl = p.find('\n', start)) != std::string::npos) {
    const std::string line = p.substr(start, nl - start);
    if (which == 1 && !line.empty()) r.last_error = line;
    on_line(rank, line, which == 1);
    start = nl + 1;
  }
  p.erase(0, start);
  if (flush && !p.empty()) {
    if (which == 1) r.last_error = p;
    on_line(rank, p, which == 1);
    p.clear();
  }
}

// OpenBLAS 0.3.21 (Debian 12) does not know newer CPUs (the development VM's Intel family 6 model 207)
// and falls back to its Prescott (SSE3) kernels: single-thread sgemm 29 GFLOP/s instead of 133 with its
// SkylakeX kernels (scripts/measure-cpu). Workers get OPENBLAS_CORETYPE from the CPU's flags unless it is
// set: SkylakeX with AVX-512F, Haswell with AVX2 and FMA (OpenBLAS README, "Runtime CPU detection").
std::string openblas_coretype() {
  if (std::getenv("OPENBLAS_CORETYPE")) return "";
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    line += " ";
    if (line.find(" avx512f ") != std::string::npos) return "SkylakeX";
    if (line.find(" avx2 ") != std::string::npos && line.find(" fma ") != std::string::npos) return "Haswell";
    return "";
  }
  return "";
}

}  // namespace

LaunchOutcome run_workers(const std::vector<WorkerProcess>& workers, const LineHandler& on_line) {
  std::vector<Running> run(workers.size());
  LaunchOutcome out;
  auto stop_all = [&](int except) {
    for (size_t i = 0; i < run.size(); ++i)
      if (static_cast<int>(i) != except && !run[i].exited && run[i].pid > 0) kill(run[i].pid, SIGTERM);
  };
  for (size_t i = 0; i < workers.size(); ++i) {
    int out_pipe[2], err_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0)
      throw std::runtime_error(std::string("cannot create a pipe: ") + std::strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
    CStrings argv = argv_for(workers[i]), envp = environment_for(workers[i]);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, workers[i].exe.c_str(), &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    close(out_pipe[1]);
    close(err_pipe[1]);
    if (rc != 0) {
      close(out_pipe[0]);
      close(err_pipe[0]);
      stop_all(-1);
      out.ok = false;
      out.failed_rank = static_cast<int>(i);
      out.exit_code = 127;
      out.error = "cannot start " + workers[i].exe + ": " + std::strerror(rc);
      break;
    }
    run[i].pid = pid;
    run[i].fds[0] = out_pipe[0];
    run[i].fds[1] = err_pipe[0];
    fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
    fcntl(err_pipe[0], F_SETFL, O_NONBLOCK);
  }
  using clock = std::chrono::steady_clock;
  clock::time_point kill_deadline{};
  bool killing = false;
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<std::pair<size_t, int>> owner;
    for (size_t i = 0; i < run.size(); ++i)
      for (int w = 0; w < 2; ++w)
        if (run[i].fds[w] >= 0) {
          fds.push_back({run[i].fds[w], POLLIN, 0});
          owner.emplace_back(i, w);
        }
    bool all_exited = true;
    for (const auto& r : run) all_exited &= r.exited || r.pid < 0;
    if (fds.empty() && all_exited) break;
    poll(fds.data(), fds.size(), 100);
    for (size_t k = 0; k < fds.size(); ++k) {
      auto [i, w] = owner[k];
      if (fds[k].revents & (POLLIN | POLLHUP | POLLERR)) {
        drain(run[i], static_cast<int>(i), w, on_line, false);
        if (fds[k].revents & (POLLHUP | POLLERR) && !(fds[k].revents & POLLIN)) {
          drain(run[i], static_cast<int>(i), w, on_line, true);
          close(run[i].fds[w]);
          run[i].fds[w] = -1;
        }
      }
    }
    // Ranks that ended since the last round. When several failed at once, one killed by a signal is the
    // likelier cause (the others then lose their peer), else the lowest rank.
    int first = -1;
    for (size_t i = 0; i < run.size(); ++i) {
      Running& r = run[i];
      if (r.exited || r.pid < 0) continue;
      if (waitpid(r.pid, &r.status, WNOHANG) != r.pid) continue;
      r.exited = true;
      const bool failed = !(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0);
      if (!failed || !out.ok) continue;
      for (int w = 0; w < 2; ++w)  // its last words may still be in the pipe
        if (r.fds[w] >= 0) drain(r, static_cast<int>(i), w, on_line, true);
      if (first < 0 || (WIFSIGNALED(r.status) && !WIFSIGNALED(run[static_cast<size_t>(first)].status)))
        first = static_cast<int>(i);
    }
    if (first >= 0) {
      const Running& r = run[static_cast<size_t>(first)];
      out.ok = false;
      out.failed_rank = first;
      out.exit_code = WIFEXITED(r.status) ? WEXITSTATUS(r.status) : 128 + WTERMSIG(r.status);
      out.error = r.last_error.empty() ? describe_status(r.status) : r.last_error;
      stop_all(first);
      killing = true;
      kill_deadline = clock::now() + std::chrono::seconds(5);
    }
    if (killing && clock::now() > kill_deadline) {
      for (auto& r : run)
        if (!r.exited && r.pid > 0) kill(r.pid, SIGKILL);
      killing = false;
    }
  }
  return out;
}

int free_local_port() { return exec::free_local_port(); }

std::string exec_worker(const WorkerProcess& w) {
  CStrings argv = argv_for(w), envp = environment_for(w);
  execve(w.exe.c_str(), argv.data(), envp.data());
  return "cannot run " + w.exe + ": " + std::strerror(errno);
}

std::string sibling_executable(const std::string& name, const char* env_var) {
  if (const char* w = std::getenv(env_var)) return w;
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return (self.parent_path() / name).string();
}

std::vector<std::pair<std::string, std::string>> worker_thread_env(int threads) {
  std::vector<std::pair<std::string, std::string>> env{{"OMP_NUM_THREADS", std::to_string(threads)},
                                                       {"OPENBLAS_NUM_THREADS", std::to_string(threads)}};
  if (const std::string core = openblas_coretype(); !core.empty()) env.emplace_back("OPENBLAS_CORETYPE", core);
  // ATen's OpenMP threads and OpenBLAS's pthreads are two pools on the same cores; GOMP's default
  // active wait spins between parallel regions and starves the BLAS threads. Passive waiting: a step of
  // bench_executor at 2 threads on 2 vCPUs takes 125 ms instead of 337 (docs/executor.md). Unless set.
  if (!std::getenv("OMP_WAIT_POLICY")) env.emplace_back("OMP_WAIT_POLICY", "PASSIVE");
  return env;
}

std::vector<std::pair<std::string, std::string>> local_rank_env(int rank, int world, int port) {
  return {{"RANK", std::to_string(rank)},         {"WORLD_SIZE", std::to_string(world)},
          {"LOCAL_RANK", std::to_string(rank)},   {"LOCAL_WORLD_SIZE", std::to_string(world)},
          {"MASTER_ADDR", "127.0.0.1"},           {"MASTER_PORT", std::to_string(port)}};
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

std::string host_name() {
  char buf[256] = {};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

}  // namespace paraplan::cli

#pragma once
// Starting worker processes and watching them: posix_spawn with an argument list (no shell), each
// worker's stdout and stderr read line by line through pipes, and when one worker fails the others are
// stopped (SIGTERM, then SIGKILL) so that nothing waits forever for a rank that is gone.
#include <functional>
#include <string>
#include <vector>

namespace paraplan::cli {

struct WorkerProcess {
  std::string exe;
  std::vector<std::string> args;  // argv[1..]
  std::vector<std::pair<std::string, std::string>> env;  // set or replaced on top of this process's environment
};

struct LaunchOutcome {
  bool ok = true;
  int failed_rank = -1;  // the first worker that failed
  int exit_code = 0;     // its exit code (128 + signal when killed by one)
  std::string error;     // its last stderr line, or how it died
};

using LineHandler = std::function<void(int rank, const std::string& line, bool is_stderr)>;

// Runs the workers to completion. Worker i is rank i.
LaunchOutcome run_workers(const std::vector<WorkerProcess>& workers, const LineHandler& on_line);

// A TCP port on 127.0.0.1 for the workers' rendezvous store (paraplan/exec/local_port.hpp).
int free_local_port();

// A program installed next to this one (paraplan-worker, paraplan-probe), or the path in `env_var`.
std::string sibling_executable(const std::string& name, const char* env_var);

// The environment of a LibTorch worker with `threads` compute threads: OMP_NUM_THREADS,
// OPENBLAS_NUM_THREADS, OPENBLAS_CORETYPE (from the CPU's flags, unless set) and OMP_WAIT_POLICY=PASSIVE
// (unless set). paraplan run, paraplan demo and paraplan probe start their workers with it.
std::vector<std::pair<std::string, std::string>> worker_thread_env(int threads);

// The torchrun variables of rank `rank` of `world` processes on this machine (store on 127.0.0.1:port).
std::vector<std::pair<std::string, std::string>> local_rank_env(int rank, int world, int port);

std::string cpu_model();  // /proc/cpuinfo's model name
std::string host_name();

// Replaces this process with `w` (the torchrun / srun path: one worker, this rank). Returns only on
// failure, with the reason.
std::string exec_worker(const WorkerProcess& w);

}  // namespace paraplan::cli

#include "thread_policy.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#ifdef __linux__
#include <dirent.h>
#include <sched.h>
#endif

namespace paraplan::exec {

std::set<int> thread_ids() {
  std::set<int> ids;
#ifdef __linux__
  if (DIR* d = opendir("/proc/self/task")) {
    while (const dirent* e = readdir(d))
      if (e->d_name[0] != '.') ids.insert(std::stoi(e->d_name));
    closedir(d);
  }
#endif
  return ids;
}

namespace {
bool own_cores = false;
}  // namespace

std::string set_thread_policy(const std::set<int>& tids, int policy) {
#ifdef __linux__
  for (int tid : tids) {
    const sched_param none{};
    if (sched_setscheduler(tid, policy, &none) != 0 && errno != ESRCH)  // ESRCH: it has ended
      return "thread " + std::to_string(tid) + ": sched_setscheduler(" +
             (policy == SCHED_IDLE ? "SCHED_IDLE" : policy == SCHED_BATCH ? "SCHED_BATCH" : std::to_string(policy)) +
             "): " + std::strerror(errno);
  }
#else
  (void)tids;
  (void)policy;
#endif
  return "";
}

void note_own_cores(bool own) { own_cores = own; }

int event_loop_policy() {
#ifdef __linux__
  return own_cores ? SCHED_IDLE : SCHED_BATCH;
#else
  return -1;
#endif
}

int thread_policy(int tid) {
#ifdef __linux__
  return sched_getscheduler(tid);
#else
  (void)tid;
  return -1;
#endif
}

std::vector<int> worker_cores(int local_rank, int local_world, int threads, const std::vector<int>& allowed) {
  const int n = static_cast<int>(allowed.size());
  if (n == 0 || local_world < 1 || local_rank < 0) return {};
  const int k = std::max(1, n / local_world);
  if (threads > k) return {};
  std::vector<int> cores;
  for (int i = 0; i < k; ++i) cores.push_back(allowed[static_cast<size_t>((local_rank * k + i) % n)]);
  std::sort(cores.begin(), cores.end());
  cores.erase(std::unique(cores.begin(), cores.end()), cores.end());
  return cores;
}

bool pinning_wanted() {
  const char* pin = std::getenv("PARAPLAN_PIN_CORES");
  return !pin || std::string(pin) != "0";
}

std::vector<int> allowed_cores() {
  std::vector<int> cores;
#ifdef __linux__
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return {};
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cores.push_back(c);
#endif
  return cores;
}

std::string pin_process(const std::vector<int>& cores) {
#ifdef __linux__
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cores) CPU_SET(c, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) return std::string("sched_setaffinity: ") + std::strerror(errno);
  return "";
#else
  (void)cores;
  return "CPU affinity is set on Linux only";
#endif
}

std::vector<int> pin_worker(int local_rank, int local_world, int threads, std::string& error) {
  note_own_cores(false);
  if (!pinning_wanted()) return {};
  const std::vector<int> allowed = allowed_cores();
  const std::vector<int> cores = worker_cores(local_rank, local_world, threads, allowed);
  if (cores.empty()) return {};
  if (error = pin_process(cores); !error.empty()) return {};
  note_own_cores(local_world <= static_cast<int>(allowed.size()));
  return cores;
}

}  // namespace paraplan::exec

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

std::string make_batch_threads(const std::set<int>& tids) {
#ifdef __linux__
  for (int tid : tids) {
    const sched_param none{};
    if (sched_setscheduler(tid, SCHED_BATCH, &none) != 0 && errno != ESRCH)  // ESRCH: it has ended
      return "thread " + std::to_string(tid) + ": sched_setscheduler(SCHED_BATCH): " + std::strerror(errno);
  }
#else
  (void)tids;
#endif
  return "";
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

}  // namespace paraplan::exec

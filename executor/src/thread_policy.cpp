#include "thread_policy.hpp"

#include <cerrno>
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

}  // namespace paraplan::exec

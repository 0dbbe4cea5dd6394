#pragma once
// The options `paraplan run` and `paraplan-worker` share: one definition, so that what the launcher
// accepts is exactly what it can pass on to every worker. No LibTorch.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace paraplan::exec {

struct RunOptions {
  std::vector<std::string> overrides;  // --set section.field=value
  int steps = 5;
  int threads = 0;                     // compute threads per worker (0: the launcher chooses)
  std::string data, load, adapter, save, save_adapter, save_merged;
  double lr = 1e-3, weight_decay = 0.0;
  uint64_t seed = 0;
  int fake_rank = -1;                  // >= 0: run only this rank, alone, with the fake communicator
  int timeout_s = 120;                 // store connection and every collective
};

void add_run_options(CLI::App& app, RunOptions& o);
// The options as paraplan-worker arguments, paths made absolute (workers may start elsewhere).
std::vector<std::string> run_option_args(const RunOptions& o);

}  // namespace paraplan::exec

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
  int checkpoint_every = 0;            // write a training checkpoint every N steps (0: never)
  std::string checkpoint_dir;          // where (default: the --resume directory)
  std::string resume;                  // a checkpoint root (its latest complete step) or one step directory
};

void add_run_options(CLI::App& app, RunOptions& o);
// Rules between options: PlanError naming the option, its value and the rule.
void check_run_options(const RunOptions& o);
// Where checkpoints go: --checkpoint-dir, else the root of --resume ("" when none are written).
std::string checkpoint_root(const RunOptions& o);
// The options as paraplan-worker arguments, paths made absolute (workers may start elsewhere).
std::vector<std::string> run_option_args(const RunOptions& o);

}  // namespace paraplan::exec

#pragma once
// paraplan-teach-worker: the LibTorch side of `paraplan demo` (the textbook chapter's exercises). Each
// exercise prints its progress and results as JSON lines on stdout (rank 0 only), which `paraplan demo`
// reads, stores in the run store and prints as tables; see cli/src/cmd_demo.cpp.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "paraplan/exec/communicator.hpp"

namespace paraplan::exec {

// One JSON line on stdout, flushed (the parent reads line by line).
void emit(const nlohmann::json& event);

// The gloo groups of a data-parallel world from RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT, or a
// world of one when they are unset.
std::unique_ptr<ProcessGroups> data_parallel_groups(int timeout_s);

struct LenetOptions {
  std::string data_dir;         // Fashion-MNIST IDX files
  int epochs = 5;
  int64_t global_batch = 64;    // images per optimizer step, over all ranks
  double lr = 1e-3;
  uint64_t seed = 0;
  int64_t train_samples = 0;    // 0: all 60,000
  int64_t test_samples = 0;     // 0: all 10,000
  int log_every = 10;           // a step event every N optimizer steps (1: every step)
  int timeout_s = 120;
};
int run_lenet(const LenetOptions& o);

}  // namespace paraplan::exec

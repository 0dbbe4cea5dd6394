#pragma once
// paraplan-teach-worker: the LibTorch side of `paraplan demo` (the textbook chapter's exercises). Each
// exercise prints its progress and results as JSON lines on stdout (rank 0 only), which `paraplan demo`
// reads, stores in the run store and prints as tables; see cli/src/cmd_demo.cpp.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

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

// The chapter's second exercise: pretrain a small LLaMA-shaped model on the fortunes corpus, then
// fine-tune it on multi-digit addition with full fine-tuning and with LoRA at each rank (q_proj and
// v_proj, alpha = 4 r as in the chapter's recipe r = 8, alpha = 32), measuring trainable parameters,
// time per step, peak memory, validation loss and task accuracy.
struct LoraRanksOptions {
  std::string corpus;              // fortune file or directory (pretraining text)
  std::string work_dir;            // pretrained model, data files, adapters
  std::vector<int> ranks{4, 8, 16};
  std::vector<std::string> targets{"q_proj", "v_proj"};  // the chapter's recipe
  int pretrain_steps = 300;
  int finetune_steps = 200;
  double pretrain_lr = 1e-3, full_lr = 1e-3, lora_lr = 3e-3;
  int eval_problems = 200;         // held-out addition problems for the task accuracy
  std::string task = "addition";   // teach_data.hpp: "addition" or "copy"
  int digits = 2;                  // digits of each addend / letters to copy
  uint64_t seed = 0;
  bool quick = false;              // a smaller model (tests)
};
int run_lora_ranks(const LoraRanksOptions& o);

}  // namespace paraplan::exec

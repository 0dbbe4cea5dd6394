#pragma once
// Options of `paraplan demo` (cmd_demo.cpp parses them; demo_*.cpp run them).
#include <cstdint>
#include <string>
#include <vector>

namespace paraplan::cli {

struct LenetDemoOptions {
  std::vector<int> workers{1, 2, 4};
  int epochs = 5;
  int64_t global_batch = 64;
  double lr = 1e-3;
  uint64_t seed = 0;
  int threads = 1;
  int64_t train_samples = 0, test_samples = 0;  // 0: all
  int log_every = 10;
  std::string data = "/usr/share/datasets/fashion-mnist";
  std::string db = "runs.sqlite";
  std::string plot;
  bool json = false;
};
int run_lenet_demo(const LenetDemoOptions& o);

struct TourOptions {
  std::string model = "llama3-8b";
  bool json = false;
};
int run_memory_tour(const TourOptions& o);

}  // namespace paraplan::cli

namespace paraplan::cli {

struct LoraDemoOptions {
  std::vector<int> ranks{4, 8, 16};
  std::vector<std::string> targets{"q_proj", "v_proj"};
  int pretrain_steps = 300, finetune_steps = 400;
  double pretrain_lr = 1e-3, full_lr = 1e-3, lora_lr = 5e-3;
  int eval_problems = 200;
  std::string task = "copy";  // or "addition"
  int task_size = 0;          // letters to copy / digits per addend (0: 5 for copy, 2 for addition)
  uint64_t seed = 0;
  int threads = 0;  // 0: every core of this machine
  bool quick = false;
  std::string corpus = "/usr/share/games/fortunes";
  std::string work_dir;  // default: a directory beside the store
  std::string db = "runs.sqlite";
  std::string plot;
  bool json = false;
};
int run_lora_demo(const LoraDemoOptions& o);

}  // namespace paraplan::cli

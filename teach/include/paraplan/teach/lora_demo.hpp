#pragma once
// The chapter's second exercise (lora-ranks) as data: the worker's events, one result per variant
// (pretraining, full fine-tuning, LoRA at each rank), the table and the charts. Shared by `paraplan
// demo lora-ranks` and the GUI's Learn tab; no Qt, no LibTorch.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "paraplan/teach/chart.hpp"
#include "paraplan/teach/table.hpp"

namespace paraplan::teach {

struct LoraResult {
  std::string phase;         // "pretrain", "full fine-tuning", "LoRA r=8"
  int lora_rank = 0;         // 0: no LoRA
  int64_t trainable = 0;     // counted by the executor (its parameter layout)
  int64_t trainable_planner = 0;  // the planner's count for the same plan
  int64_t params = 0;        // all parameters, adapters included
  double step_s = 0;         // mean time per optimizer step (after the first)
  double peak_measured_bytes = 0, peak_predicted_bytes = 0;
  double val_loss = 0;       // nats/token on held-out problems
  int correct = 0, problems = 0;
  double accuracy = 0;       // exact answers, fraction
  std::vector<std::string> samples;  // a few greedy answers
};

struct LoraPhaseCurve {
  std::string phase;
  std::vector<double> step, loss;
  int steps = 0;
};

struct LoraRanksRun {
  nlohmann::json model;      // the model's dimensions
  int64_t params = 0;
  std::string corpus, task;
  std::vector<LoraPhaseCurve> curves;
  std::vector<LoraResult> results;
  bool done = false;
};

void apply_lora_event(LoraRanksRun& run, const nlohmann::json& event);

// Rows: full fine-tuning, then LoRA by rank (pretraining is the starting point, not a row).
TextTable lora_table(const LoraRanksRun& run);
// Fine-tuning loss per step (one line per variant), and task accuracy / trainable share per variant.
std::vector<Chart> lora_charts(const LoraRanksRun& run);

}  // namespace paraplan::teach

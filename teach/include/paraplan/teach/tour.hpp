#pragma once
// The memory tour: the textbook chapter's trade-offs (full fine-tuning -> LoRA -> QLoRA; DP -> ZeRO-1/2/3;
// TP; PP; recompute), each step turning one knob of a plan. One definition for `paraplan demo
// memory-tour` and the GUI's Learn tab: the steps, the planner's numbers before and after, and the
// formula that says by how much, evaluated for the tour's model. No Qt, no LibTorch.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "paraplan/memory.hpp"
#include "paraplan/plan.hpp"
#include "paraplan/timing.hpp"

namespace paraplan::teach {

enum class TourKind { full, lora, qlora, dp, zero1, zero2, zero3, tp, pp, recompute };

struct TourStep {
  TourKind kind;
  std::string title;
  std::string knob;       // the plan fields this step changes, e.g. "parallel.zero: 1 -> 2"
  std::string section;    // where the chapter discusses it, e.g. "10.3.2 FSDP"
  nlohmann::json plan;    // this step's plan ("model" is the tour's model)
  int compare_with = -1;  // the step (0-based) whose knob this step turns; -1 for the first
};

// The ten steps for a model preset (default: the chapter's LLaMA-3-8B): bf16 AdamW, sequence 2048, on
// H100-80GB GPUs, as in the chapter's Hugging Face recipe.
std::vector<TourStep> tour_steps(const std::string& model = "llama3-8b");

struct TourRow {
  std::string what;      // "weights", ..., "total (worst GPU)", "step time"
  double before = 0, now = 0;
  bool has_before = false;
  bool bytes = true;     // false: seconds
};

struct TourResult {
  bool valid = false;
  std::string error;           // when not valid: the planner's rules this step's plan breaks
  planner::Plan plan;
  planner::MemoryBreakdown memory;
  planner::StepEstimate time;
  std::vector<TourRow> rows;   // the worst stage's categories, then its total and the step time
  std::string formula;         // the formula, with its source
  std::string worked;          // the formula evaluated for this model, with units
  std::string explanation;     // what changed and why, in words
};

// Evaluates step i of `steps` (and the step it compares with) with the planner.
TourResult evaluate_tour_step(const std::vector<TourStep>& steps, int i);

// The tour as text: per step the knob, the table before / now / change (GiB = 2^30 B; s), the
// formula, its value for this model, and the explanation.
std::string tour_text(const std::vector<TourStep>& steps);

}  // namespace paraplan::teach

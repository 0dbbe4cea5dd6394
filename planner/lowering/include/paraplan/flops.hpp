#pragma once
// FLOPs per training step: model FLOPs (what the math needs) and hardware FLOPs (recompute included),
// for MFU and HFU as PaLM (Chowdhery et al. 2022, App. B) defines them.
#include "paraplan/plan.hpp"

namespace paraplan::planner {

// How the attention core (QK^T and AV) is counted. `full`: as if every score were computed, the
// convention of PaLM's 6N + 12LHQT and of Megatron-LM before commit 8873b55 (2025); every published
// Megatron MFU uses it. `causal`: half, what a causal flash kernel executes (Megatron since 2025).
enum class AttentionFlops { full, causal };

struct StepFlops {
  double model = 0;     // forward + backward (weight gradients only for trainable weights)
  double hardware = 0;  // model + recomputed forward work
  double per_token_model = 0;
};

StepFlops step_flops(const Plan& plan, AttentionFlops convention = AttentionFlops::full);

}  // namespace paraplan::planner

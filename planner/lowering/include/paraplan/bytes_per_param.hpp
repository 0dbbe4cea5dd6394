#pragma once
// Bytes per element of each training state, by dtype and optimizer: the conventions the memory model,
// the time model (optimizer step, gathers) and the simulator share. Sources at each definition
// (bytes_per_param.cpp).
#include "paraplan/training.hpp"

namespace paraplan::planner {

double weight_bytes_per_param(Precision p);           // working (compute) copy of a trainable weight
double grad_bytes_per_param(Precision p, GradDtype g);
double optimizer_bytes_per_param(Optimizer o);        // persistent optimizer state per trainable parameter
double activation_bytes(Precision p);                 // one activation element (fp8 keeps bf16 activations)
// A frozen base weight under LoRA: linear weights in lora.base's dtype (NF4 with its double-quantised
// constants under QLoRA), the other weights (norms, embeddings) in 16 bits unless the base is fp32.
double nf4_bytes_per_param();
double frozen_linear_bytes_per_param(LoraBase b);
double frozen_other_bytes_per_param(LoraBase b);

}  // namespace paraplan::planner

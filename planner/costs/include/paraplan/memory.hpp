#pragma once
// The memory model: bytes per rank, per pipeline stage, by category.
#include <cstdint>
#include <vector>

#include "paraplan/framework.hpp"
#include "paraplan/plan.hpp"
#include "paraplan/workload.hpp"

namespace paraplan::planner {

struct StageMemory {
  int stage = 0;
  int dense_layers = 0, moe_layers = 0;
  bool has_embedding = false, has_head = false;
  double params = 0;                // parameters held by one rank of this stage (after TP/EP/ZeRO-3 sharding)
  double trainable_params = 0;      // of which trainable (before ZeRO sharding)
  double inflight_microbatches = 0; // micro-batches of activations held at the peak
  double weights_bytes = 0;
  double gradients_bytes = 0;
  double master_weights_bytes = 0;
  double optimizer_bytes = 0;
  double activations_bytes = 0;     // saved in-flight activations + the largest working set
  double buffers_bytes = 0;         // DP buckets, ZeRO-3 gather/prefetch, PP send/recv
  double overhead_bytes = 0;        // CUDA context, NCCL communicators, allocator headroom
  double host_bytes = 0;            // offloaded to host memory (not part of total)
  // Parts of activations_bytes and overhead_bytes, for explanations.
  double saved_activation_bytes = 0, working_bytes = 0;
  double cuda_context_bytes = 0, nccl_bytes = 0, headroom_bytes = 0;
  double fp8_weight_cache_bytes = 0;  // part of weights_bytes: Transformer Engine's cached FP8 weight copies

  double allocated_bytes() const {
    return weights_bytes + gradients_bytes + master_weights_bytes + optimizer_bytes + activations_bytes +
           buffers_bytes;
  }
  double total_bytes() const { return allocated_bytes() + overhead_bytes; }
};

struct MemoryBreakdown {
  std::vector<StageMemory> per_stage;
  int worst_stage = 0;
  double peak_bytes = 0;        // total of the worst stage
  double gpu_memory_bytes = 0;  // capacity of one device
  bool fits = false;
};

// Model states (weights, gradients, master weights, optimizer) on the device, and what offload
// moved to host memory.
struct ModelStateBytes {
  double weights = 0, gradients = 0, master = 0, optimizer = 0;
  double host = 0;  // offloaded (ZeRO-Offload / ZeRO-Infinity)
  double total() const { return weights + gradients + master + optimizer; }
};
struct StateConventions {
  Precision precision = Precision::bf16;
  GradDtype grad_dtype = GradDtype::fp32;
  Optimizer optimizer = Optimizer::adamw;
  int zero = 0;
  GradLayout layout = GradLayout::single;
  bool fp32_sharded_params = false;  // FSDP2: the fp32 shard is the parameter (and the master copy)
  Offload offload = Offload::none;
};
// `trainable` parameters and `frozen_weight_bytes` of frozen base weights held by one rank before
// ZeRO; `shard` is the data-parallel degree ZeRO splits them over.
ModelStateBytes model_state_bytes(double trainable, double frozen_weight_bytes, double shard,
                                  const StateConventions& c);

int64_t lora_params(int64_t in, int64_t out, int rank);  // r(in + out) (Hu et al. 2021 §4.1)

struct ShapeContext;
struct StageLayers;
MemoryBreakdown estimate_memory(const Plan& plan);
MemoryBreakdown estimate_memory(const Plan& plan, const ShapeContext& ctx);
MemoryBreakdown estimate_memory(const Plan& plan, const ShapeContext& ctx, const std::vector<StageLayers>& layers);

// One stage holding `layers` and, as the flags say, the embedding and the head. estimate_memory puts
// them on the first and the last stage; the simulator places chunks itself (ZBV's V puts both on stage 0).
StageMemory stage_memory(const Plan& plan, const ShapeContext& ctx, int stage, const StageLayers& layers,
                         bool has_embedding, bool has_head);

// The worst stage only (what the search needs); the same model as estimate_memory.
struct PeakMemory {
  double peak_bytes = 0;
  int worst_stage = 0;
  bool fits = false;
};
PeakMemory peak_memory(const Plan& plan, const ShapeContext& ctx, const std::vector<StageLayers>& layers);

}  // namespace paraplan::planner

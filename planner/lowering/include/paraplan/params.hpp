#pragma once
// Parameters of each block of the model, split by how tensor and expert parallelism shard them
// and by what LoRA freezes. The memory model multiplies these by bytes per parameter.
#include <cstdint>

#include "paraplan/model.hpp"
#include "paraplan/training.hpp"

namespace paraplan::planner {

// Parameter counts. Exact: they must agree with the checkpoints, e.g. LLaMA-3-8B = 8,030,261,248.
struct ParamCount {
  int64_t total = 0;       // every parameter (MoE: all experts)
  int64_t active = 0;      // parameters used per token (MoE: top_k + shared experts)
  int64_t embedding = 0;   // token (+ learned position) embedding
  int64_t head = 0;        // output projection (0 when tied)
  int64_t per_dense_layer = 0;
  int64_t per_moe_layer = 0;
  int64_t non_embedding() const { return total - embedding - head; }
};
ParamCount count_params(const ModelSpec& m);


struct ShardedParams {
  int64_t tp_sharded = 0;  // split over tp (column/row-parallel linears, vocab-parallel embedding)
  int64_t replicated = 0;  // whole on every tp rank (norms, row-parallel biases, router, position table)
  int64_t expert = 0;      // routed experts: split over ep, then each expert over tp (Megatron ETP = TP)

  int64_t total() const { return tp_sharded + replicated + expert; }
  double per_rank(int tp, int ep) const {
    return static_cast<double>(tp_sharded) / tp + static_cast<double>(replicated) +
           static_cast<double>(expert) / (static_cast<double>(ep) * tp);
  }
  ShardedParams& operator+=(const ShardedParams& o) {
    tp_sharded += o.tp_sharded; replicated += o.replicated; expert += o.expert;
    return *this;
  }
};

// One block's parameters. Without LoRA everything in `linear` and `other` is trainable; with LoRA
// those are the frozen base and only `lora` trains. QLoRA quantises `linear` only (bitsandbytes
// replaces nn.Linear; embeddings, norms, biases and the output head stay in bf16).
struct BlockParams {
  ShardedParams linear;  // weight matrices of linear layers (inside transformer layers)
  ShardedParams other;   // norms, biases, embeddings, output head
  ShardedParams lora;    // LoRA adapters A and B
  int64_t largest_module = 0;  // parameters of the largest single module (DeepSpeed ZeRO-3 estimator)

  ShardedParams base() const {
    ShardedParams b = linear;
    b += other;
    return b;
  }
  int64_t total() const { return linear.total() + other.total() + lora.total(); }
  BlockParams& operator+=(const BlockParams& o);
};

// The model's blocks. `lora` may be null (full training).
struct ModelParams {
  BlockParams embedding;     // token embedding (+ learned positions)
  BlockParams dense_layer;   // one transformer layer with a dense MLP
  BlockParams moe_layer;     // one transformer layer with routed experts (zero when not MoE)
  BlockParams head;          // final norm + output projection (projection absent when tied)
  BlockParams tied_head_copy;  // embedding copy the last stage holds when tied and pp > 1 (Megatron)
  int64_t trainable_total = 0;  // trainable parameters of the whole model
  int64_t total = 0;            // all parameters including adapters
};
ModelParams model_params(const ModelSpec& m, const std::optional<LoraSpec>& lora);

// Parameters of one block held by one rank (after TP/EP sharding, before ZeRO), split into the
// parts ZeRO shards over different groups (dense over dp*cp, experts over dp*cp/ep) and into
// trainable and frozen (LoRA base) parameters.
struct RankParams {
  double trainable_dense = 0, trainable_expert = 0;
  double frozen_dense = 0, frozen_expert = 0;              // frozen base weights, in parameters
  double frozen_bytes_dense = 0, frozen_bytes_expert = 0;  // the same, in bytes (lora.base dtype; NF4)
  double total() const { return trainable_dense + trainable_expert + frozen_dense + frozen_expert; }
  double trainable() const { return trainable_dense + trainable_expert; }
  void add(const RankParams& o, double count);
};
RankParams rank_params(const BlockParams& bp, const std::optional<LoraSpec>& lora, int tp, int ep);

}  // namespace paraplan::planner

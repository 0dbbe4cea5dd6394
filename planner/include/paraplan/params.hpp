#pragma once
// Parameters of each block of the model, split by how tensor and expert parallelism shard them
// and by what LoRA freezes. The memory model multiplies these by bytes per parameter.
#include <cstdint>

#include "paraplan/model.hpp"
#include "paraplan/training.hpp"

namespace paraplan::planner {

// Counts are int64 (exact: they must match checkpoints). The same code counts in double to check a
// model's size against limits.hpp before any int64 product could overflow (model_rules.cpp).
template <class T>
struct BasicShardedParams {
  T tp_sharded = 0;  // split over tp (column/row-parallel linears, vocab-parallel embedding)
  T replicated = 0;  // whole on every tp rank (norms, row-parallel biases, router, position table)
  T expert = 0;      // routed experts: split over ep, then each expert over tp (Megatron ETP = TP)

  T total() const { return tp_sharded + replicated + expert; }
  double per_rank(int tp, int ep) const {
    return static_cast<double>(tp_sharded) / tp + static_cast<double>(replicated) +
           static_cast<double>(expert) / (static_cast<double>(ep) * tp);
  }
  BasicShardedParams& operator+=(const BasicShardedParams& o) {
    tp_sharded += o.tp_sharded; replicated += o.replicated; expert += o.expert;
    return *this;
  }
};
using ShardedParams = BasicShardedParams<int64_t>;

// One block's parameters. Without LoRA everything in `linear` and `other` is trainable; with LoRA
// those are the frozen base and only `lora` trains. QLoRA quantises `linear` only (bitsandbytes
// replaces nn.Linear; embeddings, norms, biases and the output head stay in bf16).
template <class T>
struct BasicBlockParams {
  BasicShardedParams<T> linear;  // weight matrices of linear layers (inside transformer layers)
  BasicShardedParams<T> other;   // norms, biases, embeddings, output head
  BasicShardedParams<T> lora;    // LoRA adapters A and B
  T largest_module = 0;  // parameters of the largest single module (DeepSpeed ZeRO-3 estimator)

  BasicShardedParams<T> base() const {
    BasicShardedParams<T> b = linear;
    b += other;
    return b;
  }
  T total() const { return linear.total() + other.total() + lora.total(); }
  BasicBlockParams& operator+=(const BasicBlockParams& o) {
    linear += o.linear;
    other += o.other;
    lora += o.lora;
    if (o.largest_module > largest_module) largest_module = o.largest_module;
    return *this;
  }
};
using BlockParams = BasicBlockParams<int64_t>;

// The model's blocks. `lora` may be null (full training).
template <class T>
struct BasicModelParams {
  BasicBlockParams<T> embedding;     // token embedding (+ learned positions)
  BasicBlockParams<T> dense_layer;   // one transformer layer with a dense MLP
  BasicBlockParams<T> moe_layer;     // one transformer layer with routed experts (zero when not MoE)
  BasicBlockParams<T> head;          // final norm + output projection (projection absent when tied)
  BasicBlockParams<T> tied_head_copy;  // embedding copy the last stage holds when tied and pp > 1 (Megatron)
  T trainable_total = 0;  // trainable parameters of the whole model
  T total = 0;            // all parameters including adapters
};
using ModelParams = BasicModelParams<int64_t>;
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
double nf4_bytes_per_param();  // QLoRA NF4 with double quantisation
RankParams rank_params(const BlockParams& bp, const std::optional<LoraSpec>& lora, int tp, int ep);

}  // namespace paraplan::planner

#pragma once
// Parameters of each block of the model, split by how tensor and expert parallelism shard them
// and by what LoRA freezes, and the model's exact parameter count. Per rank: rank_params.hpp.
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
// The same total counted in double: exact below 2^53, and no overflow for any dimensions, so the size
// limit (limits.hpp) is checked before the int64 count runs.
double count_params_double(const ModelSpec& m);

// The LoRA targets (training.hpp LoraTarget bits) that name a linear layer of this model as the
// planner adapts it: MLA has no k_proj/v_proj (and no q_proj when queries are compressed), GeLU MLPs
// no gate_proj, and routed experts are not adapted.
unsigned lora_target_modules(const ModelSpec& m);

}  // namespace paraplan::planner

#pragma once
// The executor's parameters, described without LibTorch: every tensor with its Hugging Face name,
// shape, whether it trains, and where it lives in its unit's flat buffer. A unit (the embedding, one
// decoder layer, the final norm + head) is what ZeRO-3 gathers at once and what one gradient bucket
// reduces. Data parallelism, checkpoint I/O and LoRA all work from this one description.
// With tensor and pipeline parallelism a rank holds the units of its pipeline stage, each tensor as its
// tensor-parallel slice (Megatron, Shoeybi et al. 2019 §3): column-parallel weights split their output
// rows, row-parallel weights their input columns, the vocabulary-parallel embedding and head their
// vocabulary rows; norms, row-parallel biases and position tables stay whole.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "paraplan/error.hpp"
#include "paraplan/plan.hpp"

namespace paraplan::exec {

// What a parameter is, so the model knows where to use it.
enum class Role {
  embed, pos_embed,                            // embedding unit
  attn_norm_w, attn_norm_b, mlp_norm_w, mlp_norm_b,
  q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b,
  gate_w, gate_b, up_w, up_b, down_w, down_b,
  lora_a, lora_b,                              // adapters; `target` says which projection they adapt
  final_norm_w, final_norm_b, lm_head,         // head unit
  none,                                        // no parameter (an absent bias)
};

enum class UnitKind { embedding, layer, head };

// Whose partial sums a parameter's gradient is (the gradient every rank computes is only its part):
//   tp: sequence parallelism runs norms and the row-parallel bias add on a slice of the tokens, and a
//       replicated LoRA A of a column-parallel linear sees only this rank's output columns;
//   kv_replicas: a key/value head held by several tensor-parallel ranks (kv_heads < tp) gets from each
//       only the part its query heads contribute.
enum class GradSum : uint8_t { none, tp, kv_replicas };

struct ParamInfo {
  std::string name;              // Hugging Face name, e.g. "model.layers.0.self_attn.q_proj.weight"
  std::vector<int64_t> shape;    // on this rank
  std::vector<int64_t> full_shape;  // the whole tensor, as saved (equal to shape without TP)
  int shard_dim = -1;            // the dimension split over tensor-parallel ranks (-1: held whole)
  int64_t shard_start = 0;       // this rank's first index along shard_dim; indices at or past
                                 // full_shape[shard_dim] are vocabulary padding (zero, never saved)
  GradSum grad_sum = GradSum::none;
  Role role = Role::embed;
  bool trainable = true;
  planner::LoraTarget target = planner::kQProj;  // for lora_a / lora_b
  int64_t offset = 0;            // elements from the start of its unit's trainable or frozen flat space
  int64_t numel() const;
};

struct UnitLayout {
  UnitKind kind = UnitKind::layer;
  int layer = -1;                // decoder layer index (layer units)
  int chunk = 0;                 // the model chunk (pipeline) it belongs to
  std::vector<ParamInfo> params;
  int64_t trainable_numel = 0;   // sum over trainable params
  int64_t frozen_numel = 0;      // sum over frozen params (LoRA base)
};

struct ModelLayout {
  std::vector<UnitLayout> units;  // embedding, layers 0..L-1, head: the order of the forward pass
  int64_t trainable_numel = 0;
  int64_t frozen_numel = 0;
  const ParamInfo* find(const std::string& name) const;
};

// Model settings the plan's ModelSpec does not carry (read from config.json when there is one).
struct ModelExtras {
  double norm_eps = 1e-5;       // rms_norm_eps / layer_norm_epsilon
  double rope_theta = 10000.0;  // RoPE base (Su et al. 2021 use 10000; LLaMA-3 uses 500000)
};

// The whole model on one rank (no tensor or pipeline parallelism).
ModelLayout model_layout(const planner::ModelSpec& m, const std::optional<planner::LoraSpec>& lora);

// Where a rank sits: its pipeline stage and tensor-parallel rank.
struct RankPosition {
  int stage = 0;
  int tp_rank = 0;
};
// The units rank `pos` holds under the plan's tp, sequence parallelism and pipeline split
// (planner/pipeline.hpp: chunk_layers, stage_of_chunk), in model order, with their tensor-parallel slices.
ModelLayout rank_layout(const planner::Plan& plan, RankPosition pos);

// Tied embeddings with the head on another pipeline stage than the embedding: the head's stage keeps a
// copy of the table (Megatron's shared embedding), summed with the embedding's gradient each step.
bool tied_copy_on_head_stage(const planner::Plan& plan);

// Key/value heads under tensor parallelism: with kv_heads >= tp each rank holds kv_heads / tp of them;
// with fewer, each rank holds one, shared by tp / kv_heads ranks (vLLM QKVParallelLinear:
// num_kv_head_replicas = tp / kv_heads; Megatron-Core instead asserts tp | num_query_groups).
struct KvHeads {
  int64_t local = 0;     // kv heads on this rank
  int64_t first = 0;     // the first one's index
  int replicas = 1;      // ranks holding each
};
KvHeads kv_heads_of(const planner::ModelSpec& m, int tp, int tp_rank);
// The vocabulary padded to a multiple of tp (planner padded_vocab with the executor's multiple of 1).
int64_t padded_vocab_of(const planner::ModelSpec& m, int tp);

// peft's name for an adapter tensor: "model.layers.0.self_attn.q_proj.lora_A.weight" is saved as
// "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" (peft save_pretrained drops the
// adapter name "default" from the module path).
std::string peft_name(const std::string& lora_param_name);

// Rules the executor adds to the plan's own (what it does not implement yet), as violations naming
// the field, value and rule. Empty: the executor can run the plan.
void check_executor_support(const planner::Plan& plan, planner::Violations& errors);

}  // namespace paraplan::exec

#include "model_rules.hpp"

#include <cstdio>

#include "paraplan/limits.hpp"
#include "paraplan/params.hpp"

namespace paraplan::planner::detail {

FieldRange range_of(ModelField f) {
  using F = ModelField;
  switch (f) {
    case F::layers: return {1, limits::kLayers};
    case F::heads: case F::kv_heads: return {1, limits::kHeads};
    case F::hidden: case F::head_dim: case F::ffn_hidden: case F::vocab: case F::moe_ffn_hidden:
    case F::mla_kv_lora_rank: case F::mla_qk_nope_head_dim: case F::mla_v_head_dim:
      return {1, limits::kWidth};
    case F::mla_q_lora_rank: case F::mla_qk_rope_head_dim: return {0, limits::kWidth};  // 0: none
    case F::max_seq_len: return {0, limits::kSeqLen};  // 0: no learned position table
    case F::sliding_window: return {1, limits::kSeqLen};
    case F::moe_experts: case F::moe_top_k: return {1, limits::kExperts};
    case F::moe_shared_experts: return {0, limits::kExperts};
    case F::moe_dense_layers: return {0, limits::kLayers};
  }
  return {0, 0};
}

int64_t read_dimension(const json* v, ModelField f, const std::string& field, int64_t fallback, Violations& errors) {
  if (!v || v->is_null()) return fallback;
  const FieldRange r = range_of(f);
  return read_integer(*v, field, r.min, r.max, errors).value_or(fallback);
}

void check_model(const ModelSpec& m, const FieldNames& n, Violations& e) {
  using F = ModelField;
  auto name = [&](F f) { return n.full(f); };
  auto key = [&](F f) { return n.key(f); };
  const std::string heads = std::to_string(m.heads);
  if (m.kv_heads > 0 && m.heads > 0 && m.heads % m.kv_heads != 0)
    e.add(name(F::kv_heads), std::to_string(m.kv_heads),
          "must divide " + key(F::heads) + " (" + heads + "): each key/value head serves a whole group of query heads");
  if (m.kv_heads > m.heads)
    e.add(name(F::kv_heads), std::to_string(m.kv_heads), "must be <= " + key(F::heads) + " (" + heads + ")");
  if (m.position_embedding == PositionEmbedding::learned && m.max_seq_len < 1)
    e.add(name(F::max_seq_len), std::to_string(m.max_seq_len), "must be >= 1 with learned position embeddings");
  if (m.qk_norm && m.mla)
    e.add(n.prefix + "qk_norm", "true",
          "must be false with multi-head latent attention (mla), which normalises its compressed query and "
          "key/value instead");
  if (m.moe) {
    if (m.moe->top_k > m.moe->experts)
      e.add(name(F::moe_top_k), std::to_string(m.moe->top_k),
            "must be <= " + key(F::moe_experts) + " (" + std::to_string(m.moe->experts) + ")");
    if (m.moe->dense_layers > m.layers)
      e.add(name(F::moe_dense_layers), std::to_string(m.moe->dense_layers),
            "must be <= " + key(F::layers) + " (" + std::to_string(m.layers) + ")");
  }
  // The size, counted in double: no dimensions can overflow it (a field out of range is already
  // reported and counts as its fallback).
  const double params = count_params_double(m);
  if (!(params <= limits::kParams)) {
    char value[64], rule[160];
    std::snprintf(value, sizeof value, "%.4g parameters", params);
    std::snprintf(rule, sizeof rule, "must have at most %.0e parameters (a thousand times the largest published dense model)",
                  limits::kParams);
    e.add(n.whole, value, rule);
  }
}

}  // namespace paraplan::planner::detail

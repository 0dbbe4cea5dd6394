#pragma once
// The rules a model's dimensions obey wherever they are written — an inline model in a plan, a preset
// (data/models), a Hugging Face config.json — kept here once: each field's range, and the rules between
// fields. Each reader names the fields its own way (model.hidden, config.json: hidden_size); the rules and
// their wording are the same.
#include <functional>
#include <string>

#include "json_reader.hpp"
#include "paraplan/model.hpp"

namespace paraplan::planner::detail {

enum class ModelField {
  layers, hidden, heads, kv_heads, head_dim, ffn_hidden, vocab, max_seq_len, sliding_window,
  moe_experts, moe_top_k, moe_ffn_hidden, moe_shared_experts, moe_dense_layers,
  mla_q_lora_rank, mla_kv_lora_rank, mla_qk_nope_head_dim, mla_qk_rope_head_dim, mla_v_head_dim,
};

struct FieldRange {
  int64_t min, max;
};
FieldRange range_of(ModelField f);

// The names of the fields in the reader's words, for messages: `key` as the file spells it
// ("moe.top_k", "num_experts_per_tok"), `full` with where it is ("model.moe.top_k", "config.json: ...").
struct FieldNames {
  std::string whole;   // the model itself: "model", "config.json"
  std::string prefix;  // before each key: "model.", "config.json: "
  std::function<std::string(ModelField)> key;
  std::string full(ModelField f) const { return prefix + key(f); }
};

// One dimension: absent or null gives `fallback`; a non-integer or a value outside range_of(f) is a
// violation of `field` and gives `fallback`.
int64_t read_dimension(const json* v, ModelField f, const std::string& field, int64_t fallback, Violations& errors);

// The rules between fields and on the whole model: kv_heads divides heads, top_k <= experts, dense
// layers <= layers, learned positions need max_seq_len, and the parameter count (limits::kParams).
void check_model(const ModelSpec& m, const FieldNames& name, Violations& errors);

}  // namespace paraplan::planner::detail

// Hugging Face config.json -> ModelSpec, for the families whose modeling code the planner follows
// (transformers models/{llama,granite,mistral,mixtral,qwen2,qwen3,qwen3_moe,gpt2,gpt_neox,starcoder2},
// deepseek-ai's modeling_deepseek.py). Every
// dimension obeys the rules an inline model obeys (model_rules.hpp), named by its config.json key; keys
// that change the model are modelled or refused, never skipped.
#include <nlohmann/json.hpp>

#include "json_reader.hpp"
#include "model_rules.hpp"
#include "paraplan/plan_io.hpp"

namespace paraplan::planner {

using detail::ModelField;
using detail::show;
using nlohmann::json;

namespace {

// config.json keys of each family, for reading and for messages.
std::string hf_key(const std::string& type, ModelField f) {
  using F = ModelField;
  const bool gpt2 = type == "gpt2", mixtral = type == "mixtral", qwen3_moe = type == "qwen3_moe";
  switch (f) {
    case F::layers: return gpt2 ? "n_layer" : "num_hidden_layers";
    case F::hidden: return gpt2 ? "n_embd" : "hidden_size";
    case F::heads: return gpt2 ? "n_head" : "num_attention_heads";
    case F::kv_heads: return gpt2 ? "n_head" : "num_key_value_heads";
    case F::head_dim: return "head_dim";
    case F::ffn_hidden: return gpt2 ? "n_inner" : "intermediate_size";
    case F::vocab: return "vocab_size";
    case F::max_seq_len: return "n_positions";
    case F::sliding_window: return "sliding_window";
    case F::moe_experts: return mixtral ? "num_local_experts" : qwen3_moe ? "num_experts" : "n_routed_experts";
    case F::moe_top_k: return "num_experts_per_tok";
    case F::moe_ffn_hidden: return mixtral ? "intermediate_size" : "moe_intermediate_size";
    case F::moe_shared_experts: return "n_shared_experts";
    case F::moe_dense_layers: return "first_k_dense_replace";
    case F::mla_q_lora_rank: return "q_lora_rank";
    case F::mla_kv_lora_rank: return "kv_lora_rank";
    case F::mla_qk_nope_head_dim: return "qk_nope_head_dim";
    case F::mla_qk_rope_head_dim: return "qk_rope_head_dim";
    case F::mla_v_head_dim: return "v_head_dim";
  }
  return "?";
}

struct HfReader {
  const json& c;
  std::string type;
  std::string prefix;  // "<path>: "
  Violations& errors;

  std::string field(const std::string& key) const { return prefix + key; }
  const json* find(const std::string& key) const {
    auto it = c.find(key);
    return it == c.end() || it->is_null() ? nullptr : &*it;
  }
  int64_t dim(ModelField f, int64_t fallback, bool required) {
    const std::string key = hf_key(type, f);
    const json* v = find(key);
    if (!v && required) errors.add(field(key), "", "is required for model_type " + type);
    return detail::read_dimension(v, f, field(key), fallback, errors);
  }
  // transformers reads these as Python truthiness, so "false" (a string) would tie: only JSON booleans are taken.
  bool flag(const std::string& key, bool fallback) {
    const json* v = find(key);
    if (!v) return fallback;
    if (!v->is_boolean()) {
      errors.add(field(key), show(*v), "must be true or false (a JSON boolean)");
      return fallback;
    }
    return v->get<bool>();
  }
  std::string text(const std::string& key, const std::string& fallback) {
    const json* v = find(key);
    if (!v) return fallback;
    if (!v->is_string()) {
      errors.add(field(key), show(*v), "must be a string");
      return fallback;
    }
    return v->get<std::string>();
  }
  // A key whose other values change the model in a way the planner does not model.
  void only(const std::string& key, const json& accepted, const std::string& why) {
    const json* v = find(key);
    if (v && *v != accepted) errors.add(field(key), show(*v), "must be " + accepted.dump() + ": " + why);
  }
};

}  // namespace

ModelSpec model_from_hf_config(const json& c, const std::string& origin, Violations& errors) {
  if (!c.is_object() || !c.contains("model_type") || !c["model_type"].is_string()) {
    errors.add(origin, "", "is not a Hugging Face config.json (no \"model_type\")");
    return {};
  }
  const std::string type = c["model_type"].get<std::string>();
  HfReader r{c, type, origin + ": ", errors};
  using F = ModelField;
  ModelSpec m;
  m.name = r.text("_name_or_path", type);
  const bool gpt2 = type == "gpt2";
  const bool qwen3 = type == "qwen3" || type == "qwen3_moe";
  const bool llama_like =
      type == "llama" || type == "granite" || type == "mistral" || type == "qwen2" || type == "mixtral" || qwen3;
  const bool deepseek = type == "deepseek_v3" || type == "deepseek_v2";
  // GeLU MLP (two matrices), LayerNorm, RoPE: GPT-NeoX (Pythia) and StarCoder2.
  const bool gelu_rope = type == "gpt_neox" || type == "starcoder2";
  if (!gpt2 && !llama_like && !deepseek && !gelu_rope) {
    errors.add(r.field("model_type"), "\"" + type + "\"",
               "is not supported; supported: llama, granite, mistral, qwen2, qwen3, qwen3_moe, mixtral, gpt2, "
               "gpt_neox, starcoder2, deepseek_v2, deepseek_v3; another family can be written inline from its "
               "config's sizes (\"model\": {\"layers\", \"hidden\", \"heads\", \"kv_heads\", \"ffn_hidden\", "
               "\"vocab\", ...}: docs/plan-format.md, \"model\")");
    return m;
  }
  m.layers = static_cast<int>(r.dim(F::layers, 0, true));
  m.hidden = r.dim(F::hidden, 0, true);
  m.heads = static_cast<int>(r.dim(F::heads, 0, true));
  m.vocab = r.dim(F::vocab, 0, true);
  if (gpt2) {
    // transformers models/gpt2/configuration_gpt2.py: n_inner null = 4 * n_embd, n_positions default 1024.
    m.kv_heads = m.heads;
    m.head_dim = m.heads ? m.hidden / m.heads : 0;
    m.ffn_hidden = r.dim(F::ffn_hidden, 4 * m.hidden, false);
    m.activation = Activation::gelu;
    m.norm = Norm::layernorm;
    m.tied_embeddings = r.flag("tie_word_embeddings", true);
    m.bias = Bias::all;
    m.position_embedding = PositionEmbedding::learned;
    m.max_seq_len = r.dim(F::max_seq_len, 1024, false);
  } else if (gelu_rope) {
    // modeling_gpt_neox.py: one query_key_value projection of 3 x hidden (all heads: no GQA), dense,
    // dense_h_to_4h and dense_4h_to_h, two LayerNorms a layer, untied embed_in / embed_out by default.
    // modeling_starcoder2.py: q, k, v (GQA), o, c_fc and c_proj, all with use_bias; LayerNorms; tied by
    // default (Starcoder2Config); every layer attends to the last sliding_window keys, as Mistral's.
    const bool neox = type == "gpt_neox";
    m.kv_heads = neox ? m.heads : static_cast<int>(r.dim(F::kv_heads, m.heads, false));
    m.head_dim = m.heads ? m.hidden / m.heads : 0;
    // Both attention classes take head_dim = hidden_size // num_attention_heads and raise a ValueError when
    // that does not give back hidden_size.
    if (m.heads > 0 && m.hidden > 0 && m.hidden % m.heads != 0)
      errors.add(r.field(hf_key(type, F::heads)), std::to_string(m.heads),
                 "must divide " + hf_key(type, F::hidden) + " (" + std::to_string(m.hidden) + ") for model_type " +
                     type + ": its head_dim is hidden_size / num_attention_heads");
    m.ffn_hidden = r.dim(F::ffn_hidden, 0, true);
    const std::string act = r.text("hidden_act", neox ? "gelu" : "gelu_pytorch_tanh");
    m.activation = Activation::gelu;
    if (act != "gelu" && act != "gelu_new" && act != "gelu_fast" && act != "gelu_pytorch_tanh")
      errors.add(r.field("hidden_act"), "\"" + act + "\"",
                 "must be one of gelu, gelu_new, gelu_fast, gelu_pytorch_tanh for model_type " + type +
                     " (a two-matrix GeLU MLP)");
    m.norm = Norm::layernorm;
    m.position_embedding = PositionEmbedding::rope;
    if (neox) {
      // attention_bias (default true) on query_key_value and dense; the MLP's linears always have biases.
      // use_parallel_residual (default true) adds both branches to one input: the same weights, FLOPs and
      // kernels as the sequential block, which the planner costs; its activations keep the second norm's
      // input apart from the first's, one hidden vector a token and layer more than the model holds.
      // rotary_pct rotates part of each head: the same kernel.
      m.bias = r.flag("attention_bias", true) ? Bias::all : Bias::mlp;
      m.tied_embeddings = r.flag("tie_word_embeddings", false);
    } else {
      m.bias = r.flag("use_bias", true) ? Bias::all : Bias::none;
      m.tied_embeddings = r.flag("tie_word_embeddings", true);
      m.sliding_window = r.dim(F::sliding_window, 0, false);
    }
  } else {
    m.kv_heads = static_cast<int>(r.dim(F::kv_heads, m.heads, false));
    m.head_dim = r.dim(F::head_dim, m.heads ? m.hidden / m.heads : 0, false);
    m.ffn_hidden = r.dim(F::ffn_hidden, 0, true);
    const std::string act = r.text("hidden_act", "silu");
    m.activation = Activation::swiglu;  // every supported llama-like family gates its MLP
    if (act != "silu" && act != "swish")
      errors.add(r.field("hidden_act"), "\"" + act + "\"", "must be silu for model_type " + type);
    m.norm = Norm::rmsnorm;
    m.tied_embeddings = r.flag("tie_word_embeddings", false);
    m.position_embedding = PositionEmbedding::rope;
  }
  // transformers' head_dim, when the config has none, is hidden_size // num_attention_heads: with more
  // heads than hidden units that is 0, no attention at all (the fuzz target found it read as head_dim 0,
  // which the plan's own model form then refused). A head_dim given in the file was range-checked above.
  if (m.heads > 0 && m.hidden > 0 && m.head_dim < 1)
    errors.add(r.field(hf_key(type, F::heads)), std::to_string(m.heads),
               "must be <= " + hf_key(type, F::hidden) + " (" + std::to_string(m.hidden) +
                   ") when the config gives no head_dim: head_dim is then " + hf_key(type, F::hidden) + " // " +
                   hf_key(type, F::heads) + " = 0");
  if (type == "llama" || type == "granite") {
    // modeling_llama.py: attention_bias on q, k, v and o_proj; mlp_bias on gate, up and down_proj. Granite
    // (modeling_granite.py) is LLaMA's block with four scalar multipliers (embedding, attention, residual,
    // logits): no weights, and no kernels the planner counts apart.
    const bool attn = r.flag("attention_bias", false), mlp = r.flag("mlp_bias", false);
    m.bias = attn && mlp ? Bias::all : attn ? Bias::attention : mlp ? Bias::mlp : Bias::none;
  }
  if (type == "qwen2") {
    m.bias = Bias::qkv;  // modeling_qwen2.py: q, k, v with bias, o without
    // Qwen2 applies its window only with use_sliding_window, and then to layers >= max_window_layers only.
    r.only("use_sliding_window", false, "per-layer sliding windows (max_window_layers) are not modelled");
  }
  if (qwen3) {
    // modeling_qwen3.py / modeling_qwen3_moe.py: attention_bias on q, k, v and o_proj; an RMSNorm over
    // head_dim on each query and key head (q_norm, k_norm) before RoPE; the window as Qwen2's.
    m.bias = r.flag("attention_bias", false) ? Bias::attention : Bias::none;
    m.qk_norm = true;
    r.only("use_sliding_window", false, "per-layer sliding windows (max_window_layers) are not modelled");
  }
  if (type == "qwen3_moe") {
    // Qwen3MoeSparseMoeBlock: num_experts routed experts of moe_intermediate_size, top num_experts_per_tok,
    // no shared expert; layer i is sparse unless listed in mlp_only_layers, when i+1 is a multiple of
    // decoder_sparse_step (then a dense MLP of intermediate_size).
    MoeSpec e;
    e.experts = static_cast<int>(r.dim(F::moe_experts, 0, true));
    e.top_k = static_cast<int>(r.dim(F::moe_top_k, 0, true));
    e.ffn_hidden = r.dim(F::moe_ffn_hidden, 0, true);
    m.moe = e;
    r.only("decoder_sparse_step", 1, "MoE layers interleaved with dense ones are not modelled (every Qwen3 MoE "
                                     "release uses 1: all layers sparse)");
    r.only("mlp_only_layers", json::array(), "dense layers among the MoE layers are not modelled (every Qwen3 MoE "
                                             "release lists none)");
  }
  if (type == "mistral" || type == "mixtral") {
    // modeling_mistral.py / modeling_mixtral.py: every layer attends to the last sliding_window keys.
    m.sliding_window = r.dim(F::sliding_window, 0, false);
  }
  if (type == "mixtral") {
    MoeSpec e;
    e.experts = static_cast<int>(r.dim(F::moe_experts, 0, true));
    e.top_k = static_cast<int>(r.dim(F::moe_top_k, 2, false));
    e.ffn_hidden = m.ffn_hidden;
    m.moe = e;
  }
  if (deepseek) {
    // DeepSeek-V2/V3 config.json (modeling_deepseek.py); the multi-token-prediction module
    // (num_nextn_predict_layers) is not modelled.
    MlaSpec a;
    a.q_lora_rank = r.dim(F::mla_q_lora_rank, 0, false);  // null: a plain q_proj (DeepSeek-V2-Lite)
    a.kv_lora_rank = r.dim(F::mla_kv_lora_rank, 0, true);
    a.qk_nope_head_dim = r.dim(F::mla_qk_nope_head_dim, 0, true);
    a.qk_rope_head_dim = r.dim(F::mla_qk_rope_head_dim, 0, true);
    a.v_head_dim = r.dim(F::mla_v_head_dim, 0, true);
    m.mla = a;
    m.head_dim = a.qk_nope_head_dim + a.qk_rope_head_dim;
    m.kv_heads = m.heads;
    r.only("attention_bias", false, "biases on the MLA projections are not modelled");
    if (r.find("n_routed_experts")) {
      MoeSpec e;
      e.experts = static_cast<int>(r.dim(F::moe_experts, 0, true));
      e.top_k = static_cast<int>(r.dim(F::moe_top_k, 0, true));
      e.ffn_hidden = r.dim(F::moe_ffn_hidden, 0, true);
      e.shared_experts = static_cast<int>(r.dim(F::moe_shared_experts, 0, false));
      e.dense_layers = static_cast<int>(r.dim(F::moe_dense_layers, 0, false));
      m.moe = e;
      // modeling_deepseek.py: layer i is MoE when i >= first_k_dense_replace and i % moe_layer_freq == 0.
      r.only("moe_layer_freq", 1, "MoE layers interleaved with dense ones are not modelled (every DeepSeek "
                                  "release uses 1: all layers after first_k_dense_replace)");
    }
  }
  detail::check_model(m, {origin, r.prefix, [&](ModelField f) { return hf_key(type, f); }}, errors);
  return m;
}

}  // namespace paraplan::planner

#pragma once
// ModelSpec: the dimensions of a decoder-only transformer (its parameter counts: params.hpp).
#include <cstdint>
#include <optional>
#include <string>

namespace paraplan::planner {

enum class Activation { gelu, swiglu };
enum class Norm { layernorm, rmsnorm };
// Which linear layers carry a bias. qkv: Qwen2 (q, k, v only); attention: LLaMA attention_bias (q, k, v and o);
// mlp: LLaMA mlp_bias (gate, up, down); all: GPT (every linear layer, experts included).
enum class Bias { none, qkv, attention, mlp, all };
enum class PositionEmbedding { rope, learned };

struct MoeSpec {
  int experts = 0;          // routed experts per MoE layer
  int top_k = 0;            // experts each token is routed to
  int64_t ffn_hidden = 0;   // hidden size of one expert's MLP
  int shared_experts = 0;   // always-active experts of the same ffn_hidden (DeepSeek)
  int dense_layers = 0;     // leading layers with a dense MLP instead of experts (DeepSeek first_k_dense_replace)
  bool operator==(const MoeSpec&) const = default;
};

// Multi-head latent attention (DeepSeek-V2/V3, arXiv 2405.04434 §2.1).
struct MlaSpec {
  int64_t q_lora_rank = 0;  // 0: no query compression (q_proj is a plain h x heads*(nope+rope) matrix)
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;
  bool operator==(const MlaSpec&) const = default;
};

struct ModelSpec {
  std::string name;
  std::string preset;     // preset id it came from ("" if inline or from a HF config)
  std::string hf_config;  // path of the Hugging Face config.json it came from, as written in the plan
  int layers = 0;
  int64_t hidden = 0;
  int heads = 0;
  int kv_heads = 0;      // default: heads (multi-head attention)
  int64_t head_dim = 0;  // default: hidden / heads
  int64_t ffn_hidden = 0;
  int64_t vocab = 0;
  Activation activation = Activation::swiglu;
  Norm norm = Norm::rmsnorm;
  bool tied_embeddings = false;
  Bias bias = Bias::none;
  PositionEmbedding position_embedding = PositionEmbedding::rope;
  int64_t max_seq_len = 0;  // rows of the learned position table (learned only)
  // Sliding-window attention: each query attends to at most this many keys, itself included (Mistral 7B,
  // Jiang et al. 2023, arXiv 2310.06825 §2). 0: every earlier key (full causal attention).
  int64_t sliding_window = 0;
  // A norm (of `norm`'s kind, over head_dim) on each query and key head after the projection, before RoPE:
  // Qwen3 (transformers modeling_qwen3.py q_norm / k_norm), OLMo 2; Megatron-Core --qk-layernorm.
  bool qk_norm = false;
  std::optional<MoeSpec> moe;
  std::optional<MlaSpec> mla;

  bool is_moe_layer(int layer) const { return moe && layer >= moe->dense_layers; }
  int moe_layer_count() const { return moe ? layers - moe->dense_layers : 0; }
  int dense_layer_count() const { return layers - moe_layer_count(); }
  // Width of the query projection output (heads x head dim; MLA: heads x (nope + rope) dims).
  int64_t q_dim() const {
    return mla ? heads * (mla->qk_nope_head_dim + mla->qk_rope_head_dim) : static_cast<int64_t>(heads) * head_dim;
  }
  // Width of each of the key and value projection outputs (MLA: of the value output that feeds o_proj).
  int64_t kv_dim() const { return mla ? heads * mla->v_head_dim : static_cast<int64_t>(kv_heads) * head_dim; }
  bool qkv_bias() const { return bias != Bias::none && bias != Bias::mlp; }
  bool o_bias() const { return bias == Bias::attention || bias == Bias::all; }
  bool mlp_bias() const { return bias == Bias::mlp || bias == Bias::all; }
  bool operator==(const ModelSpec&) const = default;
};

}  // namespace paraplan::planner

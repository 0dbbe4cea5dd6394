#include <algorithm>

#include "paraplan/model.hpp"
#include "paraplan/params.hpp"

namespace paraplan::planner {

namespace {

// Adds a linear layer in -> out. Column-parallel layers shard `out`, row-parallel layers shard `in`
// (Megatron, Shoeybi et al. 2019 §3). A LoRA adapter r(in+out) shards the same way as its base:
// column-parallel: A (r x in) replicated, B (out x r) sharded; row-parallel: A sharded, B replicated.
// T is int64_t for the exact count, double for the size check (count_params_double).
template <class T>
struct LinearAdder {
  BasicBlockParams<T>& p;
  const std::optional<LoraSpec>& lora;
  bool bias;

  void column(T in, T out, unsigned target) { add(in, out, target, /*column_parallel=*/true); }
  void row(T in, T out, unsigned target) { add(in, out, target, /*column_parallel=*/false); }
  void add(T in, T out, unsigned target, bool column_parallel) {
    p.linear.tp_sharded += in * out;
    // A column-parallel bias is sharded with the output; a row-parallel one is added after the reduction.
    if (bias) (column_parallel ? p.other.tp_sharded : p.other.replicated) += out;
    p.largest_module = std::max(p.largest_module, in * out + (bias ? out : 0));
    if (lora && (lora->targets & target)) {
      (column_parallel ? p.lora.replicated : p.lora.tp_sharded) += lora->rank * in;
      (column_parallel ? p.lora.tp_sharded : p.lora.replicated) += lora->rank * out;
    }
  }
  // Not split by TP (MLA down-projections are duplicated on every TP rank in Megatron-Core).
  void replicated(T in, T out) {
    p.linear.replicated += in * out;
    if (bias) p.other.replicated += out;
    p.largest_module = std::max(p.largest_module, in * out);
  }
};

template <class T>
T norm_params(const ModelSpec& m, T width) {
  return m.norm == Norm::layernorm ? 2 * width : width;  // LayerNorm: weight and bias
}

template <class T>
void add_attention(const ModelSpec& m, const std::optional<LoraSpec>& lora, BasicBlockParams<T>& p) {
  const T h = static_cast<T>(m.hidden), heads = static_cast<T>(m.heads);
  if (m.mla) {
    // DeepSeek-V3 MLA (HF modeling_deepseek_v3.py): q_a (h -> q_lora) + norm + q_b (q_lora -> heads*(nope+rope)),
    // kv_a (h -> kv_lora + rope) + norm + kv_b (kv_lora -> heads*(nope+v)), o (heads*v -> h). Without query
    // compression (q_lora_rank null, DeepSeek-V2-Lite) q is one matrix, q_proj (h -> heads*(nope+rope)).
    LinearAdder<T> lin{p, lora, m.bias == Bias::all};
    const auto& a = *m.mla;
    const T qk = static_cast<T>(a.qk_nope_head_dim + a.qk_rope_head_dim);
    const T q_rank = static_cast<T>(a.q_lora_rank), kv_rank = static_cast<T>(a.kv_lora_rank);
    if (a.q_lora_rank > 0) {
      lin.replicated(h, q_rank);
      p.other.replicated += q_rank;  // q_a_layernorm (RMSNorm)
      lin.column(q_rank, heads * qk, 0);  // q_b_proj: no LoRA target names it
    } else {
      lin.column(h, heads * qk, kQProj);
    }
    lin.replicated(h, kv_rank + static_cast<T>(a.qk_rope_head_dim));
    p.other.replicated += kv_rank;  // kv_a_layernorm
    lin.column(kv_rank, heads * static_cast<T>(a.qk_nope_head_dim + a.v_head_dim), 0);  // kv_b_proj
    LinearAdder<T> o{p, lora, m.o_bias()};
    o.row(heads * static_cast<T>(a.v_head_dim), h, kOProj);
    return;
  }
  // LLaMA (modeling_llama.py): q, k, v and o biases with attention_bias; Qwen2: q, k, v only.
  LinearAdder<T> qkv{p, lora, m.qkv_bias()};
  const T q = static_cast<T>(m.heads) * static_cast<T>(m.head_dim);
  const T kv = static_cast<T>(m.kv_heads) * static_cast<T>(m.head_dim);
  qkv.column(h, q, kQProj);
  qkv.column(h, kv, kKProj);
  qkv.column(h, kv, kVProj);
  LinearAdder<T> o{p, lora, m.o_bias()};
  o.row(q, h, kOProj);
  if (m.qk_norm) p.other.replicated += 2 * norm_params(m, static_cast<T>(m.head_dim));  // one weight for all heads
}

template <class T>
void add_mlp(const ModelSpec& m, T ffn, const std::optional<LoraSpec>& lora, BasicBlockParams<T>& p) {
  LinearAdder<T> lin{p, lora, m.mlp_bias()};  // LLaMA mlp_bias: gate, up and down (modeling_llama.py LlamaMLP)
  const T h = static_cast<T>(m.hidden);
  if (m.activation == Activation::swiglu) {
    lin.column(h, ffn, kGateProj);
    lin.column(h, ffn, kUpProj);
  } else {
    lin.column(h, ffn, kUpProj);  // GPT fc1 is the "up" projection
  }
  lin.row(ffn, h, kDownProj);
}

template <class T>
BasicBlockParams<T> layer_params(const ModelSpec& m, bool moe, const std::optional<LoraSpec>& lora) {
  BasicBlockParams<T> p;
  const T h = static_cast<T>(m.hidden);
  p.other.replicated += 2 * norm_params(m, h);  // pre-attention and pre-MLP norms
  add_attention(m, lora, p);
  if (!moe) {
    add_mlp(m, static_cast<T>(m.ffn_hidden), lora, p);
    return p;
  }
  const auto& e = *m.moe;
  const T experts = static_cast<T>(e.experts), f = static_cast<T>(e.ffn_hidden);
  // Router: h x experts, replicated (Megatron-Core TopKRouter). Routed experts are not LoRA-adapted.
  p.linear.replicated += h * experts;
  const T mats = m.activation == Activation::swiglu ? 3 : 2;
  const T one_expert = mats * h * f;
  p.linear.expert += experts * one_expert;
  p.largest_module = std::max(p.largest_module, h * f);
  if (m.mlp_bias()) p.other.expert += experts * (f * (mats - 1) + h);
  if (e.shared_experts > 0) add_mlp(m, static_cast<T>(e.shared_experts) * f, lora, p);
  return p;
}

// Embedding, layers and head of the whole model, in T.
template <class T>
BasicModelParams<T> count_blocks(const ModelSpec& m, const std::optional<LoraSpec>& lora) {
  BasicModelParams<T> b;
  const T h = static_cast<T>(m.hidden);
  const T vh = static_cast<T>(m.vocab) * h;
  b.embedding.other.tp_sharded = vh;  // vocab-parallel embedding
  if (m.position_embedding == PositionEmbedding::learned)
    b.embedding.other.replicated = static_cast<T>(m.max_seq_len) * h;
  b.embedding.largest_module = vh;
  b.dense_layer = layer_params<T>(m, false, lora);
  if (m.moe) b.moe_layer = layer_params<T>(m, true, lora);
  b.head.other.replicated = norm_params(m, h);  // final norm
  if (!m.tied_embeddings) {
    b.head.other.tp_sharded = vh;
    b.head.largest_module = vh;
  }
  b.tied_head_copy.other.tp_sharded = m.tied_embeddings ? vh : 0;
  const T dense_n = static_cast<T>(m.dense_layer_count()), moe_n = static_cast<T>(m.moe_layer_count());
  b.total = b.embedding.total() + b.head.total() + dense_n * b.dense_layer.total() + moe_n * b.moe_layer.total();
  b.trainable_total = lora ? dense_n * b.dense_layer.lora.total() + moe_n * b.moe_layer.lora.total() : b.total;
  return b;
}

}  // namespace

ModelParams model_params(const ModelSpec& m, const std::optional<LoraSpec>& lora) {
  return count_blocks<int64_t>(m, lora);
}

double count_params_double(const ModelSpec& m) { return count_blocks<double>(m, std::nullopt).total; }

unsigned lora_target_modules(const ModelSpec& m) {
  unsigned out = kOProj;
  if (!m.mla) out |= kQProj | kKProj | kVProj;
  else if (m.mla->q_lora_rank == 0) out |= kQProj;  // a plain q_proj (DeepSeek-V2-Lite)
  const bool dense_mlp = m.dense_layer_count() > 0 || (m.moe && m.moe->shared_experts > 0);
  if (dense_mlp) out |= kUpProj | kDownProj | (m.activation == Activation::swiglu ? kGateProj : 0u);
  return out;
}

ParamCount count_params(const ModelSpec& m) {
  const ModelParams mp = model_params(m, std::nullopt);
  ParamCount c;
  c.total = mp.total;
  c.embedding = mp.embedding.total();
  c.head = m.tied_embeddings ? 0 : m.vocab * m.hidden;
  c.per_dense_layer = mp.dense_layer.total();
  c.per_moe_layer = mp.moe_layer.total();
  c.active = c.total;
  if (m.moe) {
    const auto& e = *m.moe;
    const int64_t mats = m.activation == Activation::swiglu ? 3 : 2;
    const int64_t idle_experts = e.experts - e.top_k;
    c.active -= static_cast<int64_t>(m.moe_layer_count()) * idle_experts * mats * m.hidden * e.ffn_hidden;
  }
  return c;
}

}  // namespace paraplan::planner

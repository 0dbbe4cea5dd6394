#include <algorithm>

#include "paraplan/bytes_per_param.hpp"
#include "paraplan/model.hpp"
#include "paraplan/params.hpp"

namespace paraplan::planner {

BlockParams& BlockParams::operator+=(const BlockParams& o) {
  linear += o.linear;
  other += o.other;
  lora += o.lora;
  largest_module = std::max(largest_module, o.largest_module);
  return *this;
}

namespace {

// Adds a linear layer in -> out. Column-parallel layers shard `out`, row-parallel layers shard `in`
// (Megatron, Shoeybi et al. 2019 §3). A LoRA adapter r(in+out) shards the same way as its base:
// column-parallel: A (r x in) replicated, B (out x r) sharded; row-parallel: A sharded, B replicated.
struct LinearAdder {
  BlockParams& p;
  const std::optional<LoraSpec>& lora;
  bool bias;

  void column(int64_t in, int64_t out, LoraTarget target) {
    p.linear.tp_sharded += in * out;
    if (bias) p.other.tp_sharded += out;  // column-parallel bias is sharded with the output
    p.largest_module = std::max(p.largest_module, in * out + (bias ? out : 0));
    if (lora && lora->has(target)) {
      p.lora.replicated += lora->rank * in;
      p.lora.tp_sharded += lora->rank * out;
    }
  }
  void row(int64_t in, int64_t out, LoraTarget target) {
    p.linear.tp_sharded += in * out;
    if (bias) p.other.replicated += out;  // row-parallel bias is added after the reduction
    p.largest_module = std::max(p.largest_module, in * out + (bias ? out : 0));
    if (lora && lora->has(target)) {
      p.lora.tp_sharded += lora->rank * in;
      p.lora.replicated += lora->rank * out;
    }
  }
  // Not split by TP (MLA down-projections are duplicated on every TP rank in Megatron-Core).
  void replicated(int64_t in, int64_t out) {
    p.linear.replicated += in * out;
    if (bias) p.other.replicated += out;
    p.largest_module = std::max(p.largest_module, in * out);
  }
};

int64_t norm_params(const ModelSpec& m, int64_t width) {
  return m.norm == Norm::layernorm ? 2 * width : width;  // LayerNorm: weight and bias
}

void add_attention(const ModelSpec& m, const std::optional<LoraSpec>& lora, BlockParams& p) {
  const int64_t h = m.hidden;
  LinearAdder lin{p, lora, m.bias == Bias::all};
  if (m.mla) {
    // DeepSeek-V3 MLA (HF modeling_deepseek_v3.py): q_a (h -> q_lora) + norm + q_b (q_lora -> heads*(nope+rope)),
    // kv_a (h -> kv_lora + rope) + norm + kv_b (kv_lora -> heads*(nope+v)), o (heads*v -> h).
    const auto& a = *m.mla;
    const int64_t qk = a.qk_nope_head_dim + a.qk_rope_head_dim;
    if (a.q_lora_rank > 0) {
      lin.replicated(h, a.q_lora_rank);
      p.other.replicated += a.q_lora_rank;  // q_a_layernorm (RMSNorm)
      lin.column(a.q_lora_rank, m.heads * qk, kQProj);
    } else {
      lin.column(h, m.heads * qk, kQProj);
    }
    lin.replicated(h, a.kv_lora_rank + a.qk_rope_head_dim);
    p.other.replicated += a.kv_lora_rank;  // kv_a_layernorm
    lin.column(a.kv_lora_rank, m.heads * (a.qk_nope_head_dim + a.v_head_dim), kKProj);
    lin.row(m.heads * a.v_head_dim, h, kOProj);
    return;
  }
  LinearAdder qkv{p, lora, m.bias != Bias::none};  // Qwen2: biases on q, k, v only
  qkv.column(h, m.q_dim(), kQProj);
  qkv.column(h, m.kv_dim(), kKProj);
  qkv.column(h, m.kv_dim(), kVProj);
  lin.row(m.q_dim(), h, kOProj);
}

void add_mlp(const ModelSpec& m, int64_t ffn, const std::optional<LoraSpec>& lora, BlockParams& p) {
  LinearAdder lin{p, lora, m.bias == Bias::all};
  if (m.activation == Activation::swiglu) {
    lin.column(m.hidden, ffn, kGateProj);
    lin.column(m.hidden, ffn, kUpProj);
  } else {
    lin.column(m.hidden, ffn, kUpProj);  // GPT fc1 is the "up" projection
  }
  lin.row(ffn, m.hidden, kDownProj);
}

BlockParams layer_params(const ModelSpec& m, bool moe, const std::optional<LoraSpec>& lora) {
  BlockParams p;
  p.other.replicated += 2 * norm_params(m, m.hidden);  // pre-attention and pre-MLP norms
  add_attention(m, lora, p);
  if (!moe) {
    add_mlp(m, m.ffn_hidden, lora, p);
    return p;
  }
  const auto& e = *m.moe;
  // Router: h x experts, replicated (Megatron-Core TopKRouter). Routed experts are not LoRA-adapted.
  p.linear.replicated += m.hidden * e.experts;
  const int64_t mats = m.activation == Activation::swiglu ? 3 : 2;
  const int64_t one_expert = mats * m.hidden * e.ffn_hidden;
  p.linear.expert += e.experts * one_expert;
  p.largest_module = std::max(p.largest_module, m.hidden * e.ffn_hidden);
  if (m.bias == Bias::all) p.other.expert += e.experts * (e.ffn_hidden * (mats - 1) + m.hidden);
  if (e.shared_experts > 0) add_mlp(m, e.shared_experts * e.ffn_hidden, lora, p);
  return p;
}

}  // namespace

ModelParams model_params(const ModelSpec& m, const std::optional<LoraSpec>& lora) {
  ModelParams mp;
  const int64_t vh = m.vocab * m.hidden;
  mp.embedding.other.tp_sharded = vh;  // vocab-parallel embedding
  if (m.position_embedding == PositionEmbedding::learned)
    mp.embedding.other.replicated = m.max_seq_len * m.hidden;
  mp.embedding.largest_module = vh;
  mp.dense_layer = layer_params(m, false, lora);
  if (m.moe) mp.moe_layer = layer_params(m, true, lora);
  mp.head.other.replicated = norm_params(m, m.hidden);  // final norm
  if (!m.tied_embeddings) {
    mp.head.other.tp_sharded = vh;
    mp.head.largest_module = vh;
  }
  mp.tied_head_copy.other.tp_sharded = m.tied_embeddings ? vh : 0;

  const int64_t dense_n = m.dense_layer_count(), moe_n = m.moe_layer_count();
  mp.total = mp.embedding.total() + mp.head.total() + dense_n * mp.dense_layer.total() +
             moe_n * mp.moe_layer.total();
  if (lora) {
    mp.trainable_total = dense_n * mp.dense_layer.lora.total() + moe_n * mp.moe_layer.lora.total();
  } else {
    mp.trainable_total = mp.total;
  }
  return mp;
}

void RankParams::add(const RankParams& o, double count) {
  trainable_dense += count * o.trainable_dense;
  trainable_expert += count * o.trainable_expert;
  frozen_dense += count * o.frozen_dense;
  frozen_expert += count * o.frozen_expert;
  frozen_bytes_dense += count * o.frozen_bytes_dense;
  frozen_bytes_expert += count * o.frozen_bytes_expert;
}

RankParams rank_params(const BlockParams& bp, const std::optional<LoraSpec>& lora, int tp, int ep) {
  const double t = tp, e = ep;
  auto dense = [&](const ShardedParams& s) { return s.tp_sharded / t + static_cast<double>(s.replicated); };
  auto expert = [&](const ShardedParams& s) { return static_cast<double>(s.expert) / (e * t); };
  RankParams rp;
  if (!lora) {
    const ShardedParams base = bp.base();
    rp.trainable_dense = dense(base);
    rp.trainable_expert = expert(base);
    return rp;
  }
  // LoRA: the base is frozen in lora.base's dtype; QLoRA's NF4 applies to linear weights only.
  const double lin_b = frozen_linear_bytes_per_param(lora->base);
  const double other_b = frozen_other_bytes_per_param(lora->base);
  rp.trainable_dense = dense(bp.lora);
  rp.frozen_dense = dense(bp.linear) + dense(bp.other);
  rp.frozen_expert = expert(bp.linear) + expert(bp.other);
  rp.frozen_bytes_dense = dense(bp.linear) * lin_b + dense(bp.other) * other_b;
  rp.frozen_bytes_expert = expert(bp.linear) * lin_b + expert(bp.other) * other_b;
  return rp;
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

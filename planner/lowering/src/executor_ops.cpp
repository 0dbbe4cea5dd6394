// Bytes of paraplan's executor, op by op. Each value names the executor code it comes from; "alive"
// lists the tensors that exist together at the peak of an op's backward. Sizes: T tokens of the
// micro-batch, h hidden, qw = heads*head_dim, kw = kv_heads*head_dim, f ffn, V vocabulary, r LoRA rank,
// S = b*heads*s*s attention scores, d bytes per activation; statistics and scores are fp32 (4 B).
#include "paraplan/executor_ops.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

namespace paraplan::planner {

namespace {

bool is(const Op& op, const char* name) { return std::strcmp(op.name, name) == 0; }

struct Dims {
  double T, b, s, d, h, qw, kw, f, V, H, r, stats, S;
  bool flash, swiglu;
};

Dims dims_of(const Plan& plan, const Workload& w) {
  const ModelSpec& m = plan.model;
  const double t = w.shape.tp;
  Dims x{};
  x.T = w.tokens;
  x.b = plan.training.micro_batch;
  x.s = static_cast<double>(plan.training.seq_len);
  x.d = w.act_bytes;
  x.h = static_cast<double>(m.hidden);
  x.qw = static_cast<double>(m.q_dim()) / t;
  x.kw = static_cast<double>(m.kv_dim()) / t;
  x.f = static_cast<double>(m.ffn_hidden) / t;
  x.V = static_cast<double>(w.padded_vocab) / t;
  x.H = m.heads / t;
  x.r = plan.training.lora ? plan.training.lora->rank : 0;
  // NormFn keeps rstd [T, 1] in fp32, LayerNorm also the mean.
  x.stats = m.norm == Norm::layernorm ? 8 : 4;
  x.S = x.b * x.H * x.s * x.s;
  x.flash = plan.training.flash_attention;
  x.swiglu = m.activation == Activation::swiglu;
  return x;
}

// LinearFn keeps x A^T [T, r] per adapter; its backward adds d(x A^T) [T, r].
double lora_count(const Plan& plan, unsigned targets) {
  const auto& l = plan.training.lora;
  if (!l) return 0;
  double n = 0;
  for (unsigned bit = 1; bit <= kDownProj; bit <<= 1)
    if ((targets & bit) && l->has(static_cast<LoraTarget>(bit))) ++n;
  return n;
}

void layer_op(Op& op, const Dims& x, const Plan& plan) {
  const double T = x.T, d = x.d, g = d * T * x.h;  // g: the residual stream's gradient, alive throughout
  if (is(op, "attn_norm") || is(op, "mlp_norm")) {
    op.saved_bytes = d * T * x.h + x.stats * T;  // x and rstd (NormFn)
    op.bwd_working_bytes = g + 4 * d * T * x.h;  // + dy, xhat, dx and one product (NormFn::backward)
  } else if (is(op, "qkv_proj")) {
    const double n = lora_count(plan, kQProj | kKProj | kVProj);
    op.saved_bytes = d * T * (x.h + n * x.r);  // the normed input, shared by q, k, v (LinearFn)
    // dq, dk, dv in, their three input gradients and the running sum out.
    op.bwd_working_bytes = g + d * T * (x.qw + 2 * x.kw + 2 * x.h + n * x.r);
  } else if (is(op, "rope")) {
    op.saved_bytes = 0;  // RopeFn keeps nothing; cos and sin belong to the micro-batch
    op.bwd_working_bytes = g + d * T * (2 * x.qw + 2 * x.kw);  // dq, dk, dv in, one rotated gradient out
  } else if (is(op, "attention_core")) {
    op.saved_bytes = d * T * (x.qw + 2 * x.kw);  // q, k, v (AttentionFn)
    op.bwd_working_bytes = 0;                    // counted on the softmax op, which runs in the same node
  } else if (is(op, "softmax_lse") || is(op, "softmax")) {
    // AttentionFn keeps the fp32 log-sum-exp [b*H*s] (flash) or the fp32 probabilities [S] (eager).
    op.saved_bytes = x.flash ? 4 * x.H * T : 4 * x.S;
    // AttentionFn::backward: dO, the regrouped q, k, v, dO, dV, and dQ / dK each as a bmm result and its
    // copy back to [T, width]; P and dP (flash: both computed here) fp32, row sums [b*H*s] fp32.
    const double relayout = std::max(5 * x.qw + 3 * x.kw, 4 * x.qw + 5 * x.kw);
    op.bwd_working_bytes = g + d * T * relayout + (x.flash ? 2 : 1) * 4 * x.S + 4 * x.H * T;
  } else if (is(op, "o_proj")) {
    const double n = lora_count(plan, kOProj);
    op.saved_bytes = d * T * (x.qw + n * x.r);
    op.bwd_working_bytes = g + d * T * (x.qw + n * x.r);  // d(attention output)
  } else if (is(op, "fc1")) {
    const double n = lora_count(plan, kGateProj | kUpProj);
    op.saved_bytes = d * T * (x.h + n * x.r);
    const double f_in = x.swiglu ? 2 * x.f : x.f;  // d gate and d up (SwiGLU) or d fc1
    op.bwd_working_bytes = g + d * T * (f_in + 2 * x.h + n * x.r);
  } else if (is(op, "swiglu")) {
    op.saved_bytes = d * T * 2 * x.f;             // gate and up (SwiGluFn)
    op.bwd_working_bytes = g + d * T * 4 * x.f;   // d act in; sigmoid, d up, d gate
  } else if (is(op, "gelu")) {
    op.saved_bytes = d * T * x.f;                 // its input (GeluFn)
    op.bwd_working_bytes = g + d * T * 2 * x.f;   // dy in, dx out
  } else if (is(op, "fc2")) {
    const double n = lora_count(plan, kDownProj);
    op.saved_bytes = d * T * (x.f + n * x.r);
    op.bwd_working_bytes = g + d * T * (x.f + n * x.r);  // d act out
  } else {
    op.saved_bytes = 0;  // residual adds keep nothing
    op.bwd_working_bytes = 0;
  }
}

void head_op(Op& op, const Dims& x) {
  const double T = x.T, d = x.d;
  if (is(op, "final_norm")) {
    op.saved_bytes = d * T * x.h + x.stats * T;
    op.bwd_working_bytes = 4 * d * T * x.h;  // dy, xhat, dx, one product
  } else if (is(op, "output_proj")) {
    op.saved_bytes = d * T * x.h;
    op.bwd_working_bytes = d * T * (x.V + x.h);  // d logits in, d normed out
  } else if (is(op, "cross_entropy")) {
    op.saved_bytes = d * T * x.V + 4 * T;  // logits in the compute dtype, fp32 log-sum-exp (CrossEntropyFn)
    // fp32 d logits (and its 16-bit copy), the [T, 1] of -1 scattered at the targets (the loss and its
    // seed are alive through the whole backward: kLossAndSeedBytes).
    op.bwd_working_bytes = 4 * T * x.V + (d < 4 ? d * T * x.V : 0) + 4 * T;
  }
}

// Per-op saved bytes of a layer whose inputs do not require gradients up to its first adapter (the
// first layer under LoRA: the embedding is frozen, so autograd records nothing before it).
std::vector<double> layer_saved(const Block& layer, bool frozen_prefix) {
  std::vector<double> out;
  bool grad_flows = !frozen_prefix;
  for (const Op& op : layer.ops) {
    if (op.lora_flops > 0) grad_flows = true;
    out.push_back(grad_flows ? op.saved_bytes : 0);
  }
  return out;
}

// Alive from the first backward op to the last: the 0-dim fp32 loss that Trainer::step holds and the
// autograd engine's seed gradient, ones_like(loss), which its GraphRoot node keeps until the backward
// ends (CrossEntropyFn returns an fp32 loss whatever the compute dtype): 4 + 4 bytes.
constexpr double kLossAndSeedBytes = 8;

double sum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

// max over ops, last to first, of (alive before the block + the block's saved up to op k + working of k).
double backward_peak(const Block& blk, const std::vector<double>& saved, double alive_before) {
  double peak = 0, prefix = sum(saved);
  for (size_t k = blk.ops.size(); k-- > 0;) {
    peak = std::max(peak, alive_before + prefix + blk.ops[k].bwd_working_bytes);
    prefix -= saved[k];
  }
  return peak;
}

}  // namespace

void apply_executor_ops(Workload& w, const Plan& plan) {
  const Dims x = dims_of(plan, w);
  for (Op& op : w.dense_layer.ops) layer_op(op, x, plan);
  for (Op& op : w.head.ops) head_op(op, x);
  for (Op& op : w.embedding.ops) {
    if (!is(op, "embedding")) continue;
    // The trainer holds the micro-batch's int64 ids and targets until its backward ends; the model its
    // RoPE tables cos, sin [s, head_dim / 2] and the causal mask [s, s] of bools (executor/src/model.cpp).
    const double tables = (plan.model.position_embedding == PositionEmbedding::rope
                               ? x.d * x.s * static_cast<double>(plan.model.head_dim)
                               : 0) +
                          x.s * x.s;
    op.saved_bytes = 16 * x.T + tables;
    op.bwd_working_bytes = x.d * x.T * x.h;  // d embedding output; EmbeddingFn adds it into the gradient in place
  }
  w.dense_layer.finish(x.d * x.T * x.h);
  w.head.finish(-1);
  w.embedding.finish(-1);
}

ExecutorActivations executor_activations(const Plan& plan, const Workload& w, int layers, bool has_embedding,
                                         bool has_head) {
  const bool lora = plan.training.lora.has_value();
  const std::vector<double> first = layer_saved(w.dense_layer, lora), other = layer_saved(w.dense_layer, false);
  const double emb = has_embedding ? w.embedding.saved_bytes[0] : 0;
  const double head = has_head ? w.head.saved_bytes[0] : 0;
  const double layer_sum = layers > 0 ? sum(first) + (layers - 1) * sum(other) : 0;
  ExecutorActivations a;
  a.saved = emb + layer_sum + head;
  const double root = has_head ? kLossAndSeedBytes : 0;  // a stage without the head has no loss
  double peak = a.saved;
  if (has_head) {
    peak = std::max(peak, backward_peak(w.head, [&] {
                      std::vector<double> s;
                      for (const Op& op : w.head.ops) s.push_back(op.saved_bytes);
                      return s;
                    }(), a.saved - head + root));
    // The loss forward (at::logsumexp) holds an fp32 [T, V] difference and [T] maxima beside the logits,
    // and, for 16-bit logits, their fp32 copy (CrossEntropyFn::forward).
    const double tv = w.tokens * static_cast<double>(w.padded_vocab) / w.shape.tp;
    peak = std::max(peak, a.saved + (w.act_bytes < 4 ? 4 * tv : 0) + 4 * tv + 4 * w.tokens);
  }
  if (layers > 0) {
    // The last layer runs its backward first, with every earlier layer's activations still alive.
    const std::vector<double>& last = layers == 1 ? first : other;
    peak = std::max(peak, backward_peak(w.dense_layer, last, a.saved - head - sum(last) + root));
  }
  if (has_embedding) peak = std::max(peak, emb + w.embedding.bwd_working_bytes + root);
  a.working = peak - a.saved;
  return a;
}

double executor_buffers(const Plan& plan, const RankParams& embedding, const RankParams& layer, const RankParams& head,
                        double wb, double gb) {
  const int zero = plan.parallel.zero;
  if (zero < 2) return 0;  // ZeRO 0-1 reduce and gather in place on the flat buffers
  const double n = plan.parallel.dp;
  const double trainable = std::max({embedding.trainable(), layer.trainable(), head.trainable()});
  double bytes = trainable * gb * (1 + 1 / n);  // bucket_ and rs_out_ (Engine constructor)
  if (zero == 3) bytes += std::max({embedding.total(), layer.total(), head.total()}) * wb;  // gather_buf_
  return bytes;
}

}  // namespace paraplan::planner

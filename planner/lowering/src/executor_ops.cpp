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
    // seed are alive through the whole backward).
    op.bwd_working_bytes = 4 * T * x.V + (d < 4 ? d * T * x.V : 0) + 4 * T;
  }
}

}  // namespace

void apply_executor_ops(Workload& w, const Plan& plan) {
  const Dims x = dims_of(plan, w);
  for (Op& op : w.dense_layer.ops) layer_op(op, x, plan);
  for (Op& op : w.head.ops) head_op(op, x);
  for (Op& op : w.embedding.ops) {
    if (!is(op, "embedding")) continue;
    // The micro-batch's int64 ids and targets (the RoPE tables and the causal mask are buffers, made
    // once: executor/src/model.cpp).
    op.saved_bytes = 16 * x.T;
    op.bwd_working_bytes = x.d * x.T * x.h;  // d embedding output; EmbeddingFn adds it into the gradient in place
  }
  w.dense_layer.finish(x.d * x.T * x.h);
  w.head.finish(-1);
  w.embedding.finish(-1);
}

}  // namespace paraplan::planner

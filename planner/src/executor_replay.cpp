// The executor's allocation sequence for one micro-batch through one model chunk (see
// executor_replay.hpp). Sizes: T tokens, Tl rows between TP regions, d bytes per activation element;
// statistics, scores and the loss in fp32 (4 B). "node" below: whether autograd records the op (its
// input needs a gradient or it owns a trainable parameter): only then does it keep tensors.
#include "executor_replay.hpp"

#include <cstdio>
#include <cstdlib>

#include "paraplan/pipeline.hpp"

namespace paraplan::planner {

ExecDims exec_dims(const Plan& plan) {
  const ModelSpec& m = plan.model;
  const TrainingSpec& tr = plan.training;
  const int tp = plan.parallel.tp;
  ExecDims x;
  x.d = tr.precision == Precision::fp32 ? 4 : 2;
  x.b = tr.micro_batch;
  x.s = static_cast<double>(tr.seq_len);
  x.T = x.b * x.s;
  x.tp = tp > 1;
  x.tp_size = tp;
  x.sp = x.tp && plan.parallel.sequence_parallel;
  x.Tl = x.sp ? x.T / tp : x.T;
  x.h = static_cast<double>(m.hidden);
  x.hd = static_cast<double>(m.head_dim);
  x.heads = static_cast<double>(m.heads) / tp;
  // Key/value heads: kv_heads / tp each, or one replicated head when there are fewer (layout.hpp).
  x.kv = m.kv_heads >= tp ? static_cast<double>(m.kv_heads) / tp : 1.0;
  x.q = x.heads * x.hd;
  x.k = x.kv * x.hd;
  x.f = static_cast<double>(m.ffn_hidden) / tp;
  const int64_t padded = (m.vocab + tp - 1) / tp * tp;  // executor layout.cpp padded_vocab_of
  x.vocab_rows = static_cast<double>(padded / tp);
  // The first rank whose rows pass the vocabulary holds the fewest real ones: rank 0 always holds
  // min(rows, vocab); the prediction is for rank 0's slice.
  x.vocab_valid = std::min(x.vocab_rows, static_cast<double>(m.vocab));
  if (tr.lora) {
    x.r = tr.lora->rank;
    x.lora = tr.lora->targets;
    x.frozen_base = true;
  }
  x.flash = tr.flash_attention;
  x.selective = tr.recompute == Recompute::selective;
  x.full = tr.recompute == Recompute::full;
  x.dropout = tr.dropout > 0;
  x.rms = m.norm == Norm::rmsnorm;
  x.swiglu = m.activation == Activation::swiglu;
  x.rope = m.position_embedding == PositionEmbedding::rope;
  x.learned_pos = m.position_embedding == PositionEmbedding::learned;
  x.qkv_bias = m.bias != Bias::none;
  x.all_bias = m.bias == Bias::all;
  return x;
}

Replay::Replay(double start, bool quiet)
    : cur(start), peak(start), trace_(!quiet && std::getenv("PARAPLAN_REPLAY_TRACE") != nullptr) {}

void Replay::note(double delta) const {
  if (trace_) std::fprintf(stderr, "mem %+lld activations %lld\n", static_cast<long long>(delta), static_cast<long long>(cur));
}
void Replay::alloc(double n) {
  if (n <= 0) return;
  cur += n;
  if (cur > peak) {
    peak = cur;
    buffers_at_peak = buffers;
  }
  note(n);
}
void Replay::free(double n) {
  if (n <= 0) return;
  cur -= n;
  note(-n);
}
void Replay::alloc_buffer(double n) {
  if (n <= 0) return;
  buffers += n;
  alloc(n);
}
void Replay::free_buffer(double n) {
  if (n <= 0) return;
  buffers -= n;
  free(n);
}
// ATen wraps a Python scalar into a 0-dim double tensor and casts it to the float operand's type.
void Replay::scalar() {
  alloc(8);
  alloc(4);
  free(4);
  free(8);
}
void Replay::scalar_op(double result) {
  alloc(8);
  alloc(4);
  alloc(result);
  free(4);
  free(8);
}
void Replay::int_scalar_op(double result) {
  alloc(8);
  alloc(result);
  free(8);
}
void Replay::mark(const std::string& what) const {
  if (trace_) std::fprintf(stderr, "mark %s\n", what.c_str());
}

namespace {

// ATen's reshape is a view when the permuted strides allow it (at::detail::computeStride): the attention
// regrouping of attention_fn.cpp copies otherwise.
bool q_groups_view(const ExecDims& x) {  // q_to_groups: [b, s, kv, g, hd] -> [b*kv, g*s, hd]
  const double g = x.heads / x.kv;
  return (x.s == 1 || x.kv == 1 || x.b == 1) && (x.s == 1 || g == 1);
}
bool kv_groups_view(const ExecDims& x) { return x.s == 1 || x.kv == 1 || x.b == 1; }  // kv_to_groups
bool q_back_view(const ExecDims& x) { return x.heads == 1 || x.s == 1; }               // q_from_groups
bool kv_back_view(const ExecDims& x) { return x.kv == 1 || x.s == 1; }                  // kv_from_groups

// Which ops of a layer autograd records, found by its forward (LoRA's frozen prefix: in model chunk
// 0 the embedding is frozen, so nothing is recorded before the first adapter).
struct LayerNodes {
  bool attn_norm = true, qkv = true, rope = true, attention = true, o = true, attn_drop = true, mlp_norm = true,
       fc1 = true, act = true, down = true, mlp_drop = true;
  bool output_flows = true;  // the layer's output needs a gradient
};

double stats(const ExecDims& x) { return 4 * x.Tl; }       // rstd (or mean) [Tl, 1] fp32
double rows(const ExecDims& x) { return x.b * x.heads * x.s; }  // query rows of all local heads
double scores(const ExecDims& x) { return rows(x) * x.s; }      // S: probabilities [b*H, s, s]

// NormFn forward (functions.cpp): RMSNorm rsqrt(mean(x^2) + eps); LayerNorm via the mean first.
void norm_fwd(Replay& r, const ExecDims& x, bool node) {
  const double th4 = 4 * x.Tl * x.h, st = stats(x);
  if (x.rms) {
    r.alloc(th4);  // x^2
    r.alloc(st);   // mean
    r.scalar();    // mean's division
    r.scalar();    // + eps
    r.alloc(st);   // rstd
    r.free(st);
    r.free(th4);
    r.alloc(x.d * x.Tl * x.h);  // y = x * rstd
  } else {
    r.alloc(st);  // mean
    r.scalar();
    r.alloc(th4);  // y = x - mean
    r.alloc(th4);  // y^2
    r.alloc(st);   // its mean
    r.scalar();
    r.scalar();
    r.alloc(st);  // rstd
    r.free(st);
    r.free(th4);
  }
  if (!node) {  // nothing recorded: the statistics go with the op
    r.free(st);
    if (!x.rms) r.free(st);
  }
}

// The weight gradient of a norm: xhat again (LayerNorm: (x - mean) * rstd), dy * xhat and its column sum
// (and LayerNorm's dy.sum(0)); `rs`: the unit's reduce-scatter runs at the last arrival, xhat alive.
void norm_weight_grads(Replay& r, const ExecDims& x, bool recompute_xhat, double rs) {
  const double th4 = 4 * x.Tl * x.h, h4 = 4 * x.h;
  if (recompute_xhat) r.alloc(th4);
  r.alloc(th4);  // dy * xhat
  r.alloc(h4);   // its column sum
  r.free(h4);
  r.free(th4);
  if (!x.rms) {
    r.alloc(h4);  // dy.sum(0)
    r.free(h4);
  }
  r.alloc_buffer(rs);
  r.free_buffer(rs);
  if (recompute_xhat) r.free(th4);
}

// NormFn backward; `trainable`: its weight (and bias) take gradients. With `w` (the B pass of a
// zero-bubble schedule) those are kept for the W pass with x, the statistics and dy; otherwise the node
// frees dy, x (when `frees_x`) and the statistics.
void norm_bwd(Replay& r, const ExecDims& x, bool trainable, bool frees_x, Deferred* w) {
  const double th4 = 4 * x.Tl * x.h, st = stats(x), act = x.d * x.Tl * x.h;
  const bool defer = w && trainable;
  r.alloc(th4);  // xhat
  if (trainable && !defer) norm_weight_grads(r, x, false, 0);
  r.alloc(act);  // dx = dy * w
  r.alloc(th4);  // dx * xhat
  r.alloc(st);   // its row mean c
  r.scalar();
  r.free(th4);
  if (!x.rms) {
    r.alloc(st);  // dx.mean
    r.scalar();
    r.free(st);
  }
  r.free(st);   // c
  r.free(th4);  // xhat
  const double all_stats = st * (x.rms ? 1 : 2);
  if (defer) {
    WItem i;
    i.kind = WItem::Kind::norm;
    i.dy = act;
    i.x = act;
    i.stats = all_stats;
    w->push_back(i);
    return;
  }
  r.free(act);  // dy
  if (frees_x) r.free(act);
  r.free(all_stats);
}

// ColumnFn forward (linear_fn.cpp): under SP the token slices are gathered first.
void column_fwd(Replay& r, const ExecDims& x, const std::vector<double>& widths, const std::vector<bool>& lora) {
  if (x.sp) r.alloc(x.d * x.T * x.h);
  for (size_t i = 0; i < widths.size(); ++i) {
    r.alloc(x.d * x.T * widths[i]);
    if (lora[i]) r.alloc(x.d * x.T * x.r);
  }
  if (x.sp) r.free(x.d * x.T * x.h);
}

// ColumnFn's weight gradients: x gathered again under SP, the bias column sums.
void column_weight_grads(Replay& r, const ExecDims& x, const std::vector<double>& widths, bool biases, double rs) {
  if (x.sp) r.alloc(x.d * x.T * x.h);
  if (biases && !x.frozen_base)
    for (double w : widths) {
      r.alloc(x.d * w);
      r.free(x.d * w);
    }
  r.alloc_buffer(rs);
  r.free_buffer(rs);
  if (x.sp) r.free(x.d * x.T * x.h);
}

// ColumnFn backward: d(xA^T) per adapter, dx, its reduction; then (now, or in the W pass with x, the
// dy's, the d(xA^T)'s and x A^T's kept) the weight gradients. The node frees the dy's, x and x A^T.
void column_bwd(Replay& r, const ExecDims& x, const std::vector<double>& widths, const std::vector<bool>& lora,
                bool biases, bool input_grad, Deferred* w, bool trainable = true) {
  bool dx = false;
  double dys = 0, adapters = 0;
  for (size_t i = 0; i < widths.size(); ++i) {
    dys += x.d * x.T * widths[i];
    if (lora[i]) {  // d(xA^T) = (dy B) * scale
      r.alloc(x.d * x.T * x.r);
      r.scalar();
      adapters += x.d * x.T * x.r;
    }
    if (input_grad && !dx) {
      r.alloc(x.d * x.T * x.h);
      dx = true;
    }
  }
  if (dx && x.sp) {  // reduce-scatter to this rank's tokens
    r.alloc(x.d * x.Tl * x.h);
    r.alloc(x.d * x.Tl * x.h);
    r.free(x.d * x.Tl * x.h);
    r.free(x.d * x.T * x.h);
  }
  if (w) {
    WItem i;
    i.kind = WItem::Kind::column;
    i.widths = widths;
    i.biases = biases;
    i.adapters = adapters;
    i.dy = dys;
    i.x = x.d * x.Tl * x.h;
    w->push_back(i);
    return;
  }
  if (trainable) column_weight_grads(r, x, widths, biases, 0);
  r.free(adapters);  // d(xA^T)
  r.free(dys);
  r.free(x.d * x.Tl * x.h);  // x
  r.free(adapters);          // x A^T
}

// RowFn forward: y [T, h], reduced (reduce-scattered under SP); a LoRA update from the reduced x A^T.
void row_fwd(Replay& r, const ExecDims& x, bool lora) {
  r.alloc(x.d * x.T * x.h);
  if (x.sp) {
    r.alloc(x.d * x.Tl * x.h);
    r.alloc(x.d * x.Tl * x.h);
    r.free(x.d * x.Tl * x.h);
    r.free(x.d * x.T * x.h);
  }
  if (lora) r.alloc(x.d * x.T * x.r);
}

// RowFn backward: dy gathered under SP, d(xA^T), dx [T, in]; then (now, or in the W pass with x, the
// (gathered) dy, d(xA^T) and x A^T kept) the weight gradients, the bias summed over this rank's tokens.
// `incoming_alone`: the node is the last holder of its incoming gradient.
void row_bwd(Replay& r, const ExecDims& x, double in, bool lora, bool bias, bool input_grad, bool incoming_alone,
             Deferred* w) {
  const double act = x.d * x.Tl * x.h, adapter = lora ? x.d * x.T * x.r : 0;
  if (x.sp) r.alloc(x.d * x.T * x.h);
  if (lora) {  // d(xA^T) = (dy B) * scale
    r.alloc(adapter);
    r.scalar();
  }
  if (input_grad) r.alloc(x.d * x.T * in);
  if (w) {
    WItem i;
    i.kind = WItem::Kind::row;
    i.biases = bias;
    i.adapters = adapter;
    // Without SP the kept dy is the incoming gradient itself: the W pass drops the last reference.
    i.dy = x.sp ? x.d * x.T * x.h : act;
    i.x = x.d * x.T * in;
    w->push_back(i);
    if (x.sp && incoming_alone) r.free(act);
    return;
  }
  if (bias && !x.frozen_base) {
    r.alloc(x.d * x.h);
    r.free(x.d * x.h);
  }
  r.free(adapter);
  if (x.sp) r.free(x.d * x.T * x.h);
  if (incoming_alone) r.free(act);
  r.free(x.d * x.T * in);  // x
  r.free(adapter);         // x A^T
}

// DropoutFn forward: the 1-byte mask, the scaled copy.
void dropout_fwd(Replay& r, const ExecDims& x, double n) {
  r.alloc(n);
  r.scalar_op(x.d * n);
}

void attention_fwd(Replay& r, const ExecDims& x, bool node) {
  const double tq = x.d * x.T * x.q, tk = x.d * x.T * x.k, S = scores(x), rw = 4 * rows(x);
  const bool qv = q_groups_view(x), kvv = kv_groups_view(x);
  if (!kvv) r.alloc(tk);  // kg (arguments evaluate right to left)
  if (!qv) r.alloc(tq);   // qg
  r.alloc(4 * S);         // scores (fp32 for fp32 inputs)
  r.scalar();             // / sqrt(hd)
  if (!qv) r.free(tq);
  if (!kvv) r.free(tk);
  r.alloc(rw);  // row max
  r.alloc(rw);  // row sum, then the log-sum-exp
  r.free(rw);
  if (!kvv) r.alloc(tk);  // vg
  if (x.dropout) {
    r.alloc(S);             // mask
    r.scalar_op(4 * S);     // dropped-out probabilities
  }
  r.alloc(tq);  // P V
  if (!q_back_view(x)) {
    r.alloc(tq);
    r.free(tq);
  }
  if (x.dropout) r.free(4 * S);
  const bool keep_p = node && !x.flash && !x.selective;
  const bool keep_lse = node && x.flash && !x.selective;
  if (x.dropout && !keep_p) r.free(S);
  if (!kvv) r.free(tk);
  if (!keep_lse) r.free(rw);
  if (!keep_p) r.free(4 * S);
}

void attention_bwd(Replay& r, const ExecDims& x) {
  const double tq = x.d * x.T * x.q, tk = x.d * x.T * x.k, S = scores(x), rw = 4 * rows(x);
  const bool qv = q_groups_view(x), kvv = kv_groups_view(x);
  const bool recompute_p = x.flash || x.selective;
  if (!qv) r.alloc(tq);   // qg
  if (!kvv) r.alloc(tk);  // kg
  if (!kvv) r.alloc(tk);  // vg
  if (!qv) r.alloc(tq);   // dO regrouped
  if (recompute_p) {
    r.alloc(4 * S);
    r.scalar();
    if (x.selective) {  // the whole softmax again
      r.alloc(rw);
      r.alloc(rw);
      r.free(rw);
      r.free(rw);
    }
  }
  if (x.dropout && recompute_p) r.alloc(S);  // the mask, drawn again
  if (x.dropout) r.scalar_op(4 * S);          // dropped-out P
  r.alloc(tk);                                // dV (grouped)
  if (x.dropout) r.free(4 * S);
  r.alloc(4 * S);  // dP
  if (x.dropout) r.scalar();
  r.alloc(rw);  // rowsum(P dP)
  r.scalar();
  r.alloc(tq);  // dQ
  if (!q_back_view(x)) {
    r.alloc(tq);
    r.free(tq);
  }
  r.alloc(tk);  // dK
  if (!kv_back_view(x)) {
    r.alloc(tk);
    r.free(tk);
  }
  const bool dv_copy = !kv_back_view(x);
  if (dv_copy) r.alloc(tk);
  r.free(rw);
  r.free(4 * S);              // dP
  if (dv_copy) r.free(tk);    // dV grouped (else it is dV itself)
  if (x.dropout && recompute_p) r.free(S);
  if (recompute_p) r.free(4 * S);
  if (!qv) r.free(tq);
  if (!kvv) r.free(tk);
  if (!kvv) r.free(tk);
  if (!qv) r.free(tq);
}

std::vector<double> qkv_widths(const ExecDims& x) { return {x.q, x.k, x.k}; }
std::vector<bool> qkv_lora(const ExecDims& x) {
  return {x.adapter(kQProj), x.adapter(kKProj), x.adapter(kVProj)};
}
std::vector<double> fc1_widths(const ExecDims& x) {
  return x.swiglu ? std::vector<double>{x.f, x.f} : std::vector<double>{x.f};
}
std::vector<bool> fc1_lora(const ExecDims& x) {
  return x.swiglu ? std::vector<bool>{x.adapter(kGateProj), x.adapter(kUpProj)} : std::vector<bool>{x.adapter(kUpProj)};
}
bool any(const std::vector<bool>& v) {
  for (bool b : v)
    if (b) return true;
  return false;
}

// Model::layer (model.cpp) forward, its input alive; `flows`: the input needs a gradient; `grad`: autograd
// records at all (false in the first pass of full recompute). Leaves its output alive.
LayerNodes layer_fwd(Replay& r, const ExecDims& x, bool flows, bool grad) {
  LayerNodes n;
  const double act = x.d * x.Tl * x.h, tf = x.d * x.T * x.f;
  const bool trainable_norm = !x.frozen_base;
  r.mark("fwd attn_norm");
  n.attn_norm = grad && (flows || trainable_norm);
  norm_fwd(r, x, n.attn_norm);
  flows = n.attn_norm;
  r.mark("fwd qkv");
  n.qkv = grad && (flows || !x.frozen_base || any(qkv_lora(x)));
  column_fwd(r, x, qkv_widths(x), qkv_lora(x));
  for (size_t i = 0; i < 3 && !n.qkv; ++i)
    if (qkv_lora(x)[i]) r.free(x.d * x.T * x.r);  // x A^T not kept
  flows = n.qkv;
  r.mark("fwd rope");
  n.rope = flows;
  if (x.rope) {
    r.alloc(x.d * x.T * x.q);
    r.free(x.d * x.T * x.q);
    r.alloc(x.d * x.T * x.k);
    r.free(x.d * x.T * x.k);
  }
  r.mark("fwd attention");
  n.attention = flows;
  attention_fwd(r, x, n.attention);
  if (!n.attention) r.free(x.d * x.T * (x.q + 2 * x.k));  // qkv.clear()
  r.mark("fwd o_proj");
  n.o = grad && (flows || !x.frozen_base || x.adapter(kOProj));
  row_fwd(r, x, x.adapter(kOProj));
  if (!n.o && x.adapter(kOProj)) r.free(x.d * x.T * x.r);
  if (!n.o) r.free(x.d * x.T * x.q);  // a.reset()
  flows = n.o;
  r.mark("fwd residual1");
  n.attn_drop = flows;
  if (x.dropout) dropout_fwd(r, x, x.Tl * x.h);
  r.alloc(act);  // h1 = x + o
  if (x.dropout) {
    r.free(act);  // the dropped-out copy
    if (!n.attn_drop) r.free(x.Tl * x.h);
  }
  r.free(act);  // o.reset()
  r.mark("fwd mlp_norm");
  n.mlp_norm = grad && (flows || trainable_norm);
  norm_fwd(r, x, n.mlp_norm);
  flows = n.mlp_norm;
  r.mark("fwd fc1+act");
  n.fc1 = grad && (flows || !x.frozen_base || any(fc1_lora(x)));
  column_fwd(r, x, fc1_widths(x), fc1_lora(x));
  for (size_t i = 0; i < fc1_lora(x).size() && !n.fc1; ++i)
    if (fc1_lora(x)[i]) r.free(x.d * x.T * x.r);
  flows = n.fc1;
  n.act = flows;
  r.alloc(tf);  // silu(gate) * up, or gelu(x)
  if (!n.act) r.free(x.swiglu ? 2 * tf : tf);  // gate and up (or the GeLU input) not kept
  r.mark("fwd fc2");
  n.down = grad && (flows || !x.frozen_base || x.adapter(kDownProj));
  row_fwd(r, x, x.adapter(kDownProj));
  if (!n.down && x.adapter(kDownProj)) r.free(x.d * x.T * x.r);
  if (!n.down) r.free(tf);  // act.reset()
  flows = n.down;
  r.mark("fwd residual2");
  n.mlp_drop = flows;
  if (x.dropout) dropout_fwd(r, x, x.Tl * x.h);
  r.alloc(act);  // h1 + d
  if (x.dropout) {
    r.free(act);
    if (!n.mlp_drop) r.free(x.Tl * x.h);
  }
  r.free(act);                      // d
  if (!n.fc1) r.free(act);          // n2
  if (!n.mlp_norm) r.free(act);     // h1
  if (!n.qkv) r.free(act);          // n1
  n.output_flows = flows;
  return n;
}

// Its backward, entered with g (the output's gradient) alive. g goes to two places (residual2's
// AddBackward): the MLP branch and, when h1 needs a gradient, the residual path, which keeps it until the
// MLP norm's gradient is added to it. `in_flows`: the layer input needs a gradient (then h1's gradient
// is shared the same way). `g_held`: someone else (the runner's received gradient, a recompute node's
// incoming one) keeps g. `frees_input`: the attention norm's node is the last holder of the layer
// input. `w`: zero-bubble B pass (weight gradients kept). Ends with the input's gradient alive. Returns
// whether a kept weight gradient (the down projection's) holds g itself.
bool layer_bwd(Replay& r, const ExecDims& x, const LayerNodes& n, bool in_flows, bool g_held, bool frees_input,
               Deferred* w) {
  const double act = x.d * x.Tl * x.h, tf = x.d * x.T * x.f, mask = x.Tl * x.h;
  const bool train = !x.frozen_base;
  const bool h1_flows = in_flows || n.o;
  // Without dropout and SP a kept row-parallel weight gradient holds its incoming gradient itself.
  const bool row_keeps_incoming = w && !x.sp;
  bool g_alone = !h1_flows && !g_held;  // the MLP branch is g's only holder
  bool g_kept = false;                  // the down projection's W closure holds g
  bool branch_fresh = false;            // the gradient entering the down projection is the dropout's own
  if (x.dropout && n.mlp_drop) {
    r.mark("bwd dropout");
    r.scalar_op(act);
    r.free(mask);
    if (g_alone) r.free(act);
    g_alone = false;
    branch_fresh = true;
  }
  if (n.down) {
    r.mark("bwd row");
    Deferred* rw = train || x.adapter(kDownProj) ? w : nullptr;
    row_bwd(r, x, x.f, x.adapter(kDownProj), x.all_bias, n.act, branch_fresh || g_alone, rw);
    g_kept = rw && row_keeps_incoming && !branch_fresh;
  }
  if (n.act) {
    r.mark(x.swiglu ? "bwd swiglu" : "bwd gelu");
    if (x.swiglu) {
      r.alloc(tf);      // sigmoid(gate)
      r.alloc(tf);      // d up
      r.scalar_op(tf);  // d gate = (1 - sigmoid) ...
      r.scalar();       // + 1
      r.free(tf);
      r.free(tf);      // dy
      r.free(2 * tf);  // gate, up
    } else {
      r.alloc(tf);
      r.free(tf);  // dy
      r.free(tf);  // x
    }
  }
  if (n.fc1) {
    r.mark("bwd column");
    const bool t = train || any(fc1_lora(x));
    column_bwd(r, x, fc1_widths(x), fc1_lora(x), x.all_bias, n.mlp_norm, t ? w : nullptr, t);
  }
  if (n.mlp_norm) {
    r.mark("bwd norm");
    norm_bwd(r, x, train, true, w);
    if (h1_flows) {  // + the residual path's gradient (a new tensor)
      r.alloc(act);
      r.free(act);  // the norm's dx
      if (!g_held && !g_kept) r.free(act);
    }
  }
  // h1's gradient: to the attention branch and, when the input needs one, to the residual path.
  bool acc_alone = !in_flows;
  bool acc_kept = false;
  branch_fresh = false;
  if (x.dropout && n.attn_drop) {
    r.mark("bwd dropout");
    r.scalar_op(act);
    r.free(mask);
    if (acc_alone) r.free(act);
    acc_alone = false;
    branch_fresh = true;
  }
  if (n.o) {
    r.mark("bwd row");
    Deferred* rw = train || x.adapter(kOProj) ? w : nullptr;
    row_bwd(r, x, x.q, x.adapter(kOProj), x.all_bias, n.attention, branch_fresh || acc_alone, rw);
    acc_kept = rw && row_keeps_incoming && !branch_fresh;
  }
  if (n.attention) {
    r.mark("bwd attention");
    attention_bwd(r, x);
    r.free(x.d * x.T * x.q);  // dO
    r.free(x.d * x.T * (x.q + 2 * x.k));
    if (x.flash && !x.selective) r.free(4 * rows(x));
    if (!x.flash && !x.selective) {
      r.free(4 * scores(x));
      if (x.dropout) r.free(scores(x));
    }
  }
  if (n.rope && x.rope) {
    r.mark("bwd rope");
    r.alloc(x.d * x.T * x.k);
    r.free(x.d * x.T * x.k);
    r.mark("bwd rope");
    r.alloc(x.d * x.T * x.q);
    r.free(x.d * x.T * x.q);
  }
  if (n.qkv) {
    r.mark("bwd column");
    const bool t = train || any(qkv_lora(x));
    column_bwd(r, x, qkv_widths(x), qkv_lora(x), x.qkv_bias, n.attn_norm, t ? w : nullptr, t);
  }
  if (n.attn_norm) {
    r.mark("bwd norm");
    norm_bwd(r, x, train, frees_input, w);
    if (in_flows) {  // + the residual path's gradient
      r.alloc(act);
      r.free(act);
      if (!acc_kept) r.free(act);
    }
  }
  return g_kept;
}

// CrossEntropyFn forward (vocab_fn.cpp): at::logsumexp(self, 1) is amax, |max| == inf (a bool), self -
// max, its row sums; under TP the [tp, T] log-sum-exps are all-gathered and combined the same way.
void logsumexp(Replay& r, double rows_n, double cols) {
  r.alloc(4 * rows_n);  // max
  r.alloc(4 * rows_n);  // |max|
  r.alloc(8);
  r.alloc(4);
  r.alloc(rows_n);  // == inf
  r.free(8);
  r.free(4);
  r.free(rows_n);
  r.free(4 * rows_n);
  r.alloc(4 * rows_n * cols);  // self - max
  r.alloc(4 * rows_n);         // the result
  r.free(4 * rows_n * cols);
  r.free(4 * rows_n);
}

void local_ids(Replay& r, double T) {  // ids - start, (local < 0) | (local >= rows)
  r.int_scalar_op(8 * T);
  r.int_scalar_op(T);
  r.int_scalar_op(T);
  r.free(T);
}

void loss_fwd(Replay& r, const ExecDims& x, int tp) {
  const double T = x.T;
  if (x.d < 4) r.alloc(4 * T * x.vocab_rows);  // widened logits
  logsumexp(r, T, x.vocab_valid);
  if (x.tp) {
    r.alloc(4 * tp * T);  // all ranks' log-sum-exps
    logsumexp(r, T, tp);
    local_ids(r, T);
    r.alloc(4 * T);  // the target's logit
    r.free(8 * T);
    r.free(T);
    r.free(4 * tp * T);
    r.free(4 * T);  // this rank's log-sum-exp
  } else {
    r.alloc(4 * T);  // the target's logit
  }
  r.alloc(4 * T);  // lse - picked
  r.alloc(4);      // its sum: the loss
  r.scalar();      // * scale
  r.free(4 * T);
  r.free(4 * T);  // picked
  if (x.d < 4) r.free(4 * T * x.vocab_rows);
}

void loss_bwd(Replay& r, const ExecDims& x) {
  const double T = x.T;
  r.alloc(4 * T * x.vocab_rows);  // softmax - onehot, fp32
  if (x.tp) {
    local_ids(r, T);
    r.alloc(4 * T);
    r.free(4 * T);
    r.free(8 * T);
    r.free(T);
  } else {
    r.alloc(4 * T);
    r.free(4 * T);
  }
  r.scalar();
  if (x.d < 4) {
    r.alloc(x.d * T * x.vocab_rows);
    r.free(4 * T * x.vocab_rows);
  }
}



}  // namespace

ChunkBytes chunk_bytes(const ExecDims& x, const ChunkShape& c) {
  Replay r(0, true);
  replay_forward(r, x, c);
  ChunkBytes b;
  b.output = c.head ? 0 : x.d * x.Tl * x.h;
  b.saved = r.cur - b.output;
  return b;
}

namespace {

// The layers' nodes as the forward found them (LoRA's frozen prefix).
std::vector<LayerNodes> chunk_nodes(const ExecDims& x, const ChunkShape& c) {
  Replay quiet(0, true);
  std::vector<LayerNodes> out;
  bool flows = c.embedding ? !x.frozen_base : true;
  for (int l = 0; l < c.layers; ++l) {
    out.push_back(layer_fwd(quiet, x, flows, true));
    flows = out.back().output_flows;
  }
  return out;
}

}  // namespace

void replay_forward(Replay& r, const ExecDims& x, const ChunkShape& c) {
  const double act = x.d * x.Tl * x.h;
  // Trainer::Impl::batch: ids and targets [b, s] int64; the ones the chunk does not need are freed.
  r.alloc(8 * x.T);
  r.alloc(8 * x.T);
  if (!c.head) r.free(8 * x.T);
  if (!c.embedding) r.free(8 * x.T);
  bool flows = true;  // a received activation needs its gradient
  if (c.embedding) {
    r.mark("embedding");
    if (x.tp) {
      local_ids(r, x.T);
      r.alloc(x.d * x.T * x.h);
      if (x.sp) {
        r.alloc(act);
        r.alloc(act);
        r.free(act);
        r.free(x.d * x.T * x.h);
      }
      r.free(8 * x.T);
      r.free(x.T);
    } else {
      r.alloc(act);
    }
    flows = !x.frozen_base;
    if (x.dropout) {
      dropout_fwd(r, x, x.Tl * x.h);
      r.free(act);  // the embedding output
      if (!flows) r.free(x.Tl * x.h);
    }
  }
  for (int l = 0; l < c.layers; ++l) {
    const bool pipeline_input = l == 0 && !c.embedding;  // the runner holds it
    if (x.full) {
      layer_fwd(r, x, flows, false);  // RecomputeFn keeps only its input
      flows = true;                   // its output needs a gradient: the layer's trainable parameters
    } else {
      const LayerNodes n = layer_fwd(r, x, flows, true);
      if (!n.attn_norm && !pipeline_input) r.free(act);  // x = layer(x): the old x, kept by no node
      flows = n.output_flows;
    }
  }
  if (c.head) {
    r.mark("fwd final_norm");
    norm_fwd(r, x, true);
    r.mark("fwd head");
    column_fwd(r, x, {x.vocab_rows}, {false});
    r.mark("fwd loss");
    loss_fwd(r, x, x.tp_size);
  }
  // A frozen embedding (LoRA) records no node: nothing keeps the ids once the micro-batch is dropped.
  if (c.embedding && x.frozen_base) r.free(8 * x.T);
  if (c.head) r.free(4);  // the loss, read and dropped by the pipeline runner
}

void replay_backward(Replay& r, const ExecDims& x, const ChunkShape& c, const UnitReduce& rs, bool received,
                     const std::function<void()>& after_receive, Deferred* w) {
  const double act = x.d * x.Tl * x.h, T = x.T;
  const bool train = !x.frozen_base;
  const bool norms_kept = w && train;  // the norms' W closures hold their inputs
  // The unit's reduce-scatter: at its boundary now, or at its last kept weight gradient.
  auto finish_unit = [&](size_t items_before, double bytes) {
    if (!w) {
      r.alloc_buffer(bytes);
      r.free_buffer(bytes);
    } else if (w->size() > items_before) {
      w->back().rs = bytes;
    }
  };
  if (c.head)
    r.alloc(4);  // the seed of the loss
  else if (received)
    r.alloc(act);  // the received gradient
  after_receive();
  bool g_fresh = c.head;  // the gradient entering the top layer: freed at its first accumulation
  bool top_kept = false;  // the received gradient is held by a kept weight gradient of the top layer
  if (c.head) {
    const size_t before = w ? w->size() : 0;
    r.mark("bwd loss");
    loss_bwd(r, x);
    r.free(x.d * T * x.vocab_rows);  // logits
    r.free(8 * T);                   // targets
    r.free(4 * T);                   // log-sum-exp
    r.mark("bwd column");
    column_bwd(r, x, {x.vocab_rows}, {false}, false, true, train ? w : nullptr, train);
    r.mark("bwd norm");
    norm_bwd(r, x, train, true, w);
    finish_unit(before, rs.head);
  }
  const std::vector<LayerNodes> nodes = chunk_nodes(x, c);
  for (int l = c.layers - 1; l >= 0; --l) {
    const size_t before = w ? w->size() : 0;
    const bool pipeline_input = l == 0 && !c.embedding;
    const bool in_flows = l > 0 || !c.embedding || train;
    if (x.full) {
      r.mark("bwd recompute");
      const LayerNodes n = layer_fwd(r, x, in_flows, true);
      // Inside the recomputation the layer's gradient is held by the outer node; its input by
      // RecomputeFn (the inner one is a detached view of it), or by the attention norm's W closure.
      const bool kept = layer_bwd(r, x, n, in_flows, true, false, w);
      r.free(act);  // the recomputed output
      if (g_fresh && !kept) r.free(act);
      if (!g_fresh && kept) top_kept = true;
      if (!pipeline_input && !norms_kept) r.free(act);  // RecomputeFn's input
    } else {
      const bool kept = layer_bwd(r, x, nodes[static_cast<size_t>(l)], in_flows, !g_fresh, !pipeline_input, w);
      if (!g_fresh && kept) top_kept = true;
    }
    g_fresh = true;
    finish_unit(before, rs.layer);
  }
  if (c.embedding && train) {
    if (x.dropout) {
      r.mark("bwd dropout");
      r.scalar_op(act);
      r.free(x.Tl * x.h);  // mask
      r.free(act);         // dy
    }
    r.mark("bwd embedding");
    if (x.sp) r.alloc(x.d * T * x.h);
    if (w) {
      WItem i;
      i.kind = WItem::Kind::embedding;
      i.dy = x.sp ? x.d * T * x.h : act;
      i.ids = 8 * T;
      i.rs = rs.embedding;
      w->push_back(i);
      if (x.sp) r.free(act);  // the incoming slice
    } else {
      if (x.tp) {
        local_ids(r, T);
        r.alloc(x.d * T * x.h);  // dy masked to this rank's rows
        r.free(x.d * T * x.h);
        r.free(8 * T);
        r.free(T);
      }
      if (x.sp) r.free(x.d * T * x.h);
      r.free(act);    // dy
      r.free(8 * T);  // ids
    }
  }
  if (c.head)
    r.free(4);  // the runner drops the seed
  else if (!top_kept)
    r.free(act);  // ... or the received gradient
  if (c.embedding && !w) {
    r.alloc_buffer(rs.embedding);
    r.free_buffer(rs.embedding);
  }
  if (!c.embedding && !norms_kept) r.free(act);  // the chunk's input, held by the runner until now
}

void replay_weights(Replay& r, const ExecDims& x, const Deferred& w) {
  for (const WItem& i : w) {
    switch (i.kind) {
      case WItem::Kind::column:
        r.mark("W column");
        column_weight_grads(r, x, i.widths, i.biases, i.rs);
        break;
      case WItem::Kind::row:
        r.mark("W row");
        if (i.biases && !x.frozen_base) {
          r.alloc(x.d * x.h);
          r.free(x.d * x.h);
        }
        r.alloc_buffer(i.rs);
        r.free_buffer(i.rs);
        break;
      case WItem::Kind::norm:
        r.mark("W norm");
        norm_weight_grads(r, x, true, i.rs);
        break;
      case WItem::Kind::embedding:
        r.mark("W embedding");
        if (x.tp) {
          local_ids(r, x.T);
          r.alloc(x.d * x.T * x.h);
          r.free(x.d * x.T * x.h);
          r.free(8 * x.T);
          r.free(x.T);
        }
        r.alloc_buffer(i.rs);
        r.free_buffer(i.rs);
        break;
    }
    // The closure goes: what it captured last goes first.
    if (i.kind == WItem::Kind::norm) {
      r.free(i.dy);
      r.free(i.stats);
      r.free(i.x);
    } else if (i.kind == WItem::Kind::embedding) {
      r.free(i.dy);
      r.free(i.ids);
    } else {
      r.free(i.adapters);  // x A^T
      r.free(i.adapters);  // d(xA^T)
      r.free(i.dy);
      r.free(i.x);
    }
  }
}

}  // namespace paraplan::planner

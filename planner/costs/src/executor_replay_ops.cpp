// The executor's allocations op by op (executor_replay_ops.hpp), and the bookkeeping they run on. Sizes:
// T tokens, Tl rows between TP regions, d bytes per activation element; statistics, scores and the loss
// in fp32 (4 B). "node": whether autograd records the op (its input needs a gradient or it owns a
// trainable parameter): only then does it keep tensors.
#include "executor_replay_ops.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

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

namespace replay_ops {

// ATen's reshape is a view when the permuted strides allow it (at::detail::computeStride): the attention
// regrouping of attention_fn.cpp copies otherwise.
bool q_groups_view(const ExecDims& x) {  // q_to_groups: [b, s, kv, g, hd] -> [b*kv, g*s, hd]
  const double g = x.heads / x.kv;
  return (x.s == 1 || x.kv == 1 || x.b == 1) && (x.s == 1 || g == 1);
}
bool kv_groups_view(const ExecDims& x) { return x.s == 1 || x.kv == 1 || x.b == 1; }  // kv_to_groups
bool q_back_view(const ExecDims& x) { return x.heads == 1 || x.s == 1; }               // q_from_groups
bool kv_back_view(const ExecDims& x) { return x.kv == 1 || x.s == 1; }                  // kv_from_groups

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
    w->push_back(WItem::of(WItem::Kind::norm, act, act));
    w->back().stats = all_stats;
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
                bool biases, bool input_grad, Deferred* w, bool trainable) {
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
    w->push_back(WItem::of(WItem::Kind::column, dys, x.d * x.Tl * x.h));
    w->back().widths = widths;
    w->back().biases = biases;
    w->back().adapters = adapters;
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
    // Without SP the kept dy is the incoming gradient itself: the W pass drops the last reference.
    w->push_back(WItem::of(WItem::Kind::row, x.sp ? x.d * x.T * x.h : act, x.d * x.T * in));
    w->back().biases = bias;
    w->back().adapters = adapter;
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


}  // namespace replay_ops

}  // namespace paraplan::planner

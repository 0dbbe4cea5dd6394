// Column- and row-parallel linears with LoRA (Megatron, Shoeybi et al. 2019 §3; sequence parallelism,
// Korthikanti et al. 2022 §4.2.2). Each backward computes the input gradient first (the "B" of
// zero-bubble pipelines, Qi et al. 2023) and hands the weight gradients to GradSink::weight_grad, which
// runs them at once or keeps them for the W pass. The comments say what each keeps alive;
// planner/lowering/src/executor_ops.cpp models exactly that.
#include <torch/autograd.h>

#include "functions.hpp"
#include "paraplan/exec/memory_meter.hpp"
#include "paraplan/exec/communicator.hpp"
#include "tp_comm.hpp"
#include "op_classes.hpp"

namespace paraplan::exec {

void tp_allreduce(const TpGroup& tp, at::Tensor& t) {
  if (tp.active()) tp.comm->allreduce(t);
}

at::Tensor tp_gather_rows(const TpGroup& tp, const at::Tensor& slice) {
  const int64_t rows = slice.size(0);
  at::Tensor full = at::empty({rows * tp.size, slice.size(1)}, slice.options());
  full.narrow(0, tp.rank * rows, rows).copy_(slice);
  at::Tensor flat = full.view({-1});
  tp.comm->allgather(flat);
  return full;
}

at::Tensor tp_reduce_scatter_rows(const TpGroup& tp, at::Tensor& full) {
  at::Tensor out = at::empty({full.size(0) / tp.size, full.size(1)}, full.options());
  at::Tensor flat = full.view({-1}), flat_out = out.view({-1});
  tp.comm->reduce_scatter(flat, flat_out);
  return out;
}

void accumulate_mm(at::Tensor g, const at::Tensor& a, const at::Tensor& b, double alpha) {
  if (g.scalar_type() == a.scalar_type())
    at::addmm_out(g, g, a, b, 1.0, alpha);
  else
    g.add_(at::mm(a, b), alpha);
}

void accumulate(at::Tensor g, const at::Tensor& x) {
  if (g.scalar_type() == x.scalar_type())
    g.add_(x);
  else
    g.add_(x.to(g.scalar_type()));
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

GradSink* sink_of(AutogradContext* ctx) { return reinterpret_cast<GradSink*>(ctx->saved_data["sink"].toInt()); }

void save_tp(AutogradContext* ctx, const TpGroup& tp) { ctx->saved_data["tp"] = pack_tp(tp); }
TpGroup tp_of(AutogradContext* ctx) { return unpack_tp(ctx->saved_data["tp"].toIntVector()); }

// Which of a projection's tensors are present, and their gradient slots, in saved_data.
constexpr int kFields = 8;  // has_bias, has_lora, w_slot, b_slot, a_slot, bb_slot, and 2 spare
std::vector<int64_t> describe(const std::vector<Projection>& parts) {
  std::vector<int64_t> d;
  for (const Projection& p : parts)
    d.insert(d.end(), {p.bias.defined(), p.lora_a.defined(), p.w_slot, p.b_slot, p.a_slot, p.bb_slot, 0, 0});
  return d;
}

// ---------------------------------------------------------------- column-parallel group
// Inputs: x, then per projection W [, b] [, A, B] (every tensor an input, so that an output needs a
// gradient whenever a trainable adapter feeds it even when x does not).
struct ColumnFn : torch::autograd::Function<ColumnFn> {
  // Keeps x (this rank's token slice under SP) and x A^T [T, r] per adapter; W, b, A, B are
  // parameters. The gathered input under SP is a temporary of the forward.
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, at::TensorList params, int64_t sink,
                               std::vector<int64_t> desc, std::vector<double> scales, std::vector<int64_t> tpv) {
    const OpScope scope(kGemm);
    const TpGroup tp = unpack_tp(tpv);
    const at::Tensor xg = tp.sequence_parallel() ? tp_gather_rows(tp, x) : x;
    variable_list out;
    std::vector<at::Tensor> keep{x};
    size_t k = 0;
    for (size_t i = 0; i < scales.size(); ++i) {
      const int64_t* d = &desc[i * kFields];
      const at::Tensor& w = params[k++];
      at::Tensor bias = d[0] ? params[k++] : at::Tensor();
      at::Tensor y = bias.defined() ? at::addmm(bias, xg, w.t()) : at::mm(xg, w.t());
      keep.push_back(w);
      at::Tensor a, b, t;
      if (d[1]) {
        a = params[k++];
        b = params[k++];
        t = at::mm(xg, a.t());
        at::addmm_out(y, y, t, b.t(), 1.0, scales[i]);
      }
      keep.insert(keep.end(), {a, b, t});
      out.push_back(y);
    }
    ctx->save_for_backward(keep);
    ctx->saved_data["sink"] = sink;
    ctx->saved_data["desc"] = desc;
    ctx->saved_data["scales"] = scales;
    save_tp(ctx, tp);
    return out;
  }

  // B: dx = sum_i dy_i W_i (+ d(xA^T)_i A_i), then all-reduced (reduce-scattered under SP). Alive at its
  // peak: every dy_i, every d(xA^T)_i [T, r], and dx [T, in]. W (here, or kept for the W pass):
  // dW_i += dy_i^T x, db_i += colsum(dy_i), dB_i += scale dy_i^T (xA^T)_i, dA_i += d(xA^T)_i^T x, with x
  // gathered again under SP.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const OpScope scope(kGemm);
    memory_mark("bwd column");
    const auto saved = ctx->get_saved_variables();
    const at::Tensor x = saved[0];
    const auto desc = ctx->saved_data["desc"].toIntVector();
    const auto scales = ctx->saved_data["scales"].toDoubleVector();
    const TpGroup tp = tp_of(ctx);
    GradSink* sink = sink_of(ctx);
    const size_t n = scales.size();
    std::vector<at::Tensor> dy(n), dt(n);
    at::Tensor dx;
    for (size_t i = 0; i < n; ++i) {
      if (!grads[i].defined()) continue;
      dy[i] = grads[i].contiguous();
      const at::Tensor &w = saved[1 + 4 * i], &a = saved[2 + 4 * i], &b = saved[3 + 4 * i];
      if (a.defined()) dt[i] = at::mm(dy[i], b).mul_(scales[i]);
      if (!ctx->needs_input_grad(0)) continue;
      if (dx.defined())
        at::addmm_out(dx, dx, dy[i], w);
      else
        dx = at::mm(dy[i], w);
      if (a.defined()) at::addmm_out(dx, dx, dt[i], a);
    }
    if (dx.defined() && tp.active()) {
      if (tp.sequence_parallel())
        dx = tp_reduce_scatter_rows(tp, dx);
      else
        tp_allreduce(tp, dx);
    }
    std::vector<at::Tensor> ts(n);
    bool trainable = false;  // a frozen group (LoRA's base without adapters) keeps nothing for a W pass
    for (size_t i = 0; i < n; ++i) {
      ts[i] = saved[4 + 4 * i];
      for (int f = 2; f < 6; ++f) trainable = trainable || desc[i * kFields + f] != kNoSlot;
    }
    if (trainable) sink->weight_grad(kGemm, [sink, tp, x, dy, dt, ts, desc, scales] {
      const at::Tensor xg = tp.sequence_parallel() ? tp_gather_rows(tp, x) : x;
      for (size_t i = 0; i < dy.size(); ++i) {
        if (!dy[i].defined()) continue;
        const int64_t* d = &desc[i * kFields];
        if (d[2] != kNoSlot) {
          accumulate_mm(sink->slot(d[2]), dy[i].t(), xg);
          sink->arrived(d[2]);
        }
        if (d[3] != kNoSlot) {
          accumulate(sink->slot(d[3]), dy[i].sum(0));
          sink->arrived(d[3]);
        }
        if (d[5] != kNoSlot) {
          accumulate_mm(sink->slot(d[5]), dy[i].t(), ts[i], scales[i]);
          sink->arrived(d[5]);
        }
        if (d[4] != kNoSlot) {
          accumulate_mm(sink->slot(d[4]), dt[i].t(), xg);
          sink->arrived(d[4]);
        }
      }
    });
    variable_list out(1);  // x, then every parameter tensor: none gets a gradient from autograd
    out[0] = dx;
    size_t count = 1;
    for (size_t i = 0; i < n; ++i) count += 1 + (desc[i * kFields] ? 1 : 0) + (desc[i * kFields + 1] ? 2 : 0);
    out.resize(count + 4);  // and sink, desc, scales, tp: not tensors
    return out;
  }
};

// ---------------------------------------------------------------- row-parallel
struct RowFn : torch::autograd::Function<RowFn> {
  // Keeps x [T, in / tp] and, with an adapter, x A^T [T, r] summed over tp.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w,
                            const c10::optional<at::Tensor>& bias, const c10::optional<at::Tensor>& a,
                            const c10::optional<at::Tensor>& b, int64_t sink, std::vector<int64_t> slots, double scale,
                            std::vector<int64_t> tpv) {
    const OpScope scope(kGemm);
    const TpGroup tp = unpack_tp(tpv);
    at::Tensor y = at::mm(x, w.t());
    if (tp.sequence_parallel())
      y = tp_reduce_scatter_rows(tp, y);
    else
      tp_allreduce(tp, y);
    at::Tensor t;
    if (a) {
      t = at::mm(x, a->t());
      tp_allreduce(tp, t);
      const at::Tensor rows = tp.sequence_parallel() ? t.narrow(0, tp.rank * y.size(0), y.size(0)) : t;
      at::addmm_out(y, y, rows, b->t(), 1.0, scale);
    }
    if (bias) y.add_(*bias);
    ctx->save_for_backward({x, w, a ? *a : at::Tensor(), b ? *b : at::Tensor(), t});
    ctx->saved_data["sink"] = sink;
    ctx->saved_data["slots"] = slots;
    ctx->saved_data["scale"] = scale;
    save_tp(ctx, tp);
    return y;
  }
  // B: dy gathered under SP; dx = dy W (+ scale (dy B) A). Alive at its peak: dy (and its gathered
  // copy), d(xA^T) [T, r] and dx [T, in / tp]. W: dW += dy^T x, db += colsum(dy) (of this rank's
  // tokens under SP), dB += scale dy^T (xA^T), dA += d(xA^T)^T x.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const OpScope scope(kGemm);
    memory_mark("bwd row");
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1], &a = saved[2], &b = saved[3], &t = saved[4];
    const TpGroup tp = tp_of(ctx);
    GradSink* sink = sink_of(ctx);
    const auto slots = ctx->saved_data["slots"].toIntVector();
    const double scale = ctx->saved_data["scale"].toDouble();
    const at::Tensor dy = grads[0].contiguous();
    const at::Tensor dyg = tp.sequence_parallel() ? tp_gather_rows(tp, dy) : dy;
    at::Tensor dt;
    if (a.defined()) dt = at::mm(dyg, b).mul_(scale);
    at::Tensor dx;
    if (ctx->needs_input_grad(0)) {
      dx = at::mm(dyg, w);
      if (dt.defined()) at::addmm_out(dx, dx, dt, a);
    }
    const int64_t own_rows = dy.size(0);
    const bool trainable = slots[0] != kNoSlot || slots[1] != kNoSlot || slots[2] != kNoSlot || slots[3] != kNoSlot;
    if (trainable) sink->weight_grad(kGemm, [sink, tp, x, dyg, dt, t, slots, scale, own_rows] {
      if (slots[0] != kNoSlot) {
        accumulate_mm(sink->slot(slots[0]), dyg.t(), x);
        sink->arrived(slots[0]);
      }
      if (slots[1] != kNoSlot) {
        const at::Tensor mine = tp.sequence_parallel() ? dyg.narrow(0, tp.rank * own_rows, own_rows) : dyg;
        accumulate(sink->slot(slots[1]), mine.sum(0));
        sink->arrived(slots[1]);
      }
      if (slots[3] != kNoSlot) {
        accumulate_mm(sink->slot(slots[3]), dyg.t(), t, scale);
        sink->arrived(slots[3]);
      }
      if (slots[2] != kNoSlot) {
        accumulate_mm(sink->slot(slots[2]), dt.t(), x);
        sink->arrived(slots[2]);
      }
    });
    return {dx, {}, {}, {}, {}, {}, {}, {}, {}};
  }
};

c10::optional<at::Tensor> maybe(const at::Tensor& t) { return t.defined() ? c10::optional<at::Tensor>(t) : c10::nullopt; }

}  // namespace

std::vector<at::Tensor> column_linear(GradSink* sink, const TpGroup& tp, const at::Tensor& x,
                                      const std::vector<Projection>& parts) {
  std::vector<at::Tensor> params;
  std::vector<double> scales;
  for (const Projection& p : parts) {
    params.push_back(p.w);
    if (p.bias.defined()) params.push_back(p.bias);
    if (p.lora_a.defined()) params.insert(params.end(), {p.lora_a, p.lora_b});
    scales.push_back(p.scale);
  }
  return ColumnFn::apply(x, at::TensorList(params), reinterpret_cast<int64_t>(sink), describe(parts), scales, pack_tp(tp));
}

at::Tensor row_linear(GradSink* sink, const TpGroup& tp, const at::Tensor& x, const Projection& p) {
  return RowFn::apply(x, p.w, maybe(p.bias), maybe(p.lora_a), maybe(p.lora_b), reinterpret_cast<int64_t>(sink),
                      std::vector<int64_t>{p.w_slot, p.b_slot, p.a_slot, p.bb_slot}, p.scale, pack_tp(tp));
}

}  // namespace paraplan::exec

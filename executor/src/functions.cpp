// Forward and backward of the decoder's elementwise ops, norms, dropout, unit boundaries and full
// recompute (the linears: linear_fn.cpp; embedding and loss: vocab_fn.cpp; attention:
// attention_fn.cpp). Each backward says, in its comment, what it keeps alive;
// planner/lowering/src/executor_ops.cpp (framework "paraplan") models exactly that.
#include "functions.hpp"
#include "paraplan/exec/memory_meter.hpp"

#include <torch/autograd.h>
#include <torch/csrc/autograd/engine.h>

#include <cmath>
#include <limits>

#include "tp_comm.hpp"
#include "op_classes.hpp"

namespace paraplan::exec {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using OptTensor = c10::optional<at::Tensor>;

GradSink* sink_of(AutogradContext* ctx) { return reinterpret_cast<GradSink*>(ctx->saved_data["sink"].toInt()); }
int64_t sink_id(GradSink* s) { return reinterpret_cast<int64_t>(s); }


// ---------------------------------------------------------------- RMSNorm / LayerNorm
struct NormFn : torch::autograd::Function<NormFn> {
  // Keeps x and the fp32 statistics: rstd [T, 1] (and the mean for LayerNorm).
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, const OptTensor& bias,
                            int64_t sink, int64_t ws, int64_t bs, double eps) {
    const OpScope scope(kMemory);
    const at::Tensor xf = wide(x);
    at::Tensor mean, rstd, y;
    if (bias) {
      mean = xf.mean(-1, true);
      y = xf - mean;
      rstd = at::rsqrt(y.pow(2).mean(-1, true).add_(eps));
      y.mul_(rstd);
    } else {
      rstd = at::rsqrt(xf.pow(2).mean(-1, true).add_(eps));
      y = xf * rstd;
    }
    if (y.scalar_type() != x.scalar_type()) y = y.to(x.scalar_type());
    y.mul_(w);
    if (bias) y.add_(*bias);
    ctx->save_for_backward({x, w, rstd, mean});
    ctx->saved_data["sink"] = sink;
    ctx->saved_data["slots"] = std::vector<int64_t>{ws, bs};
    return y;
  }
  // d/dx of w*xhat: rstd * (w dy - xhat mean(w dy xhat)) (RMSNorm); LayerNorm also subtracts mean(w dy).
  // Alive at its peak: dy, xhat, dx and one [T, h] product.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const OpScope scope(kMemory);
    memory_mark("bwd norm");
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1], &rstd = saved[2], &mean = saved[3];
    const at::Tensor dy = grads[0].contiguous();
    GradSink* sink = sink_of(ctx);
    const auto slots = ctx->saved_data["slots"].toIntVector();
    const at::Tensor xf = wide(x);
    at::Tensor xhat = mean.defined() ? (xf - mean).mul_(rstd) : xf * rstd;
    auto weight_grads = [sink, slots](const at::Tensor& g, const at::Tensor& xh) {
      if (slots[0] != kNoSlot) {
        accumulate(sink->slot(slots[0]), (g * xh).sum(0));
        sink->arrived(slots[0]);
      }
      if (slots[1] != kNoSlot) {
        accumulate(sink->slot(slots[1]), g.sum(0));
        sink->arrived(slots[1]);
      }
    };
    if (!sink->deferring()) {
      weight_grads(dy, xhat);
    } else if (slots[0] != kNoSlot || slots[1] != kNoSlot) {
      // The W pass: x, the statistics and dy stay alive until then; xhat is made again there.
      sink->weight_grad(kMemory, [weight_grads, x, rstd, mean, dy] {
        const at::Tensor w_xf = wide(x);
        weight_grads(dy, mean.defined() ? (w_xf - mean).mul_(rstd) : w_xf * rstd);
      });
    }
    at::Tensor dx;
    if (ctx->needs_input_grad(0)) {
      dx = wide(dy * w);
      const at::Tensor c = (dx * xhat).mean(-1, true);
      if (mean.defined()) dx.sub_(dx.mean(-1, true));
      dx.sub_(xhat.mul_(c)).mul_(rstd);
      if (dx.scalar_type() != x.scalar_type()) dx = dx.to(x.scalar_type());
    }
    return {dx, {}, {}, {}, {}, {}, {}};
  }
};

// ---------------------------------------------------------------- RoPE
// out1 = x1 cos - x2 sin, out2 = x2 cos + x1 sin over the two halves of each head (HF rotate_half);
// the backward applies the transposed rotation.
void rotate(const at::Tensor& src, at::Tensor& dst, const at::Tensor& cos, const at::Tensor& sin, int64_t heads,
            int64_t hd, int64_t s, double sign) {
  const std::vector<int64_t> shape{-1, s, heads, 2, hd / 2};
  const at::Tensor xv = src.view(shape);
  at::Tensor ov = dst.view(shape);
  const at::Tensor c = cos.view({1, s, 1, hd / 2}), sn = sin.view({1, s, 1, hd / 2});
  at::Tensor o1 = ov.select(3, 0), o2 = ov.select(3, 1);
  const at::Tensor x1 = xv.select(3, 0), x2 = xv.select(3, 1);
  at::mul_out(o1, x1, c);
  o1.addcmul_(x2, sn, -sign);
  at::mul_out(o2, x2, c);
  o2.addcmul_(x1, sn, sign);
}

struct RopeFn : torch::autograd::Function<RopeFn> {
  // Keeps nothing: cos and sin are the micro-batch's tables.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                            int64_t heads, int64_t hd, int64_t s) {
    const OpScope scope(kMemory);
    at::Tensor out = at::empty_like(x);
    rotate(x, out, cos, sin, heads, hd, s, 1.0);
    ctx->saved_data["cos"] = cos;
    ctx->saved_data["sin"] = sin;
    ctx->saved_data["dims"] = std::vector<int64_t>{heads, hd, s};
    return out;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const OpScope scope(kMemory);
    memory_mark("bwd rope");
    const auto d = ctx->saved_data["dims"].toIntVector();
    const at::Tensor dy = grads[0].contiguous();
    at::Tensor dx = at::empty_like(dy);
    rotate(dy, dx, ctx->saved_data["cos"].toTensor(), ctx->saved_data["sin"].toTensor(), d[0], d[1], d[2], -1.0);
    return {dx, {}, {}, {}, {}, {}};
  }
};

// ---------------------------------------------------------------- activations
struct SwiGluFn : torch::autograd::Function<SwiGluFn> {
  // Keeps gate and up.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gate, const at::Tensor& up) {
    const OpScope scope(kMemory);
    at::Tensor out = at::silu(gate).mul_(up);
    ctx->save_for_backward({gate, up});
    return out;
  }
  // d up = dy silu(g); d gate = dy up sigmoid(g) (1 + g (1 - sigmoid(g))).
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const OpScope scope(kMemory);
    memory_mark("bwd swiglu");
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &gate = saved[0], &up = saved[1];
    const at::Tensor dy = grads[0];
    const at::Tensor sg = at::sigmoid(gate);
    at::Tensor dup = (gate * sg).mul_(dy);
    at::Tensor dgate = at::rsub(sg, 1.0).mul_(gate).add_(1.0).mul_(sg).mul_(up).mul_(dy);
    return {dgate, dup};
  }
};

struct GeluFn : torch::autograd::Function<GeluFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x) {
    const OpScope scope(kMemory);
    ctx->save_for_backward({x});
    return at::gelu(x, "tanh");
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const OpScope scope(kMemory);
    memory_mark("bwd gelu");
    return {at::gelu_backward(grads[0], ctx->get_saved_variables()[0], "tanh")};
  }
};

// ---------------------------------------------------------------- unit boundary
struct BoundaryFn : torch::autograd::Function<BoundaryFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, int64_t sink, int64_t unit) {
    reinterpret_cast<GradSink*>(sink)->enter_unit_forward(static_cast<int>(unit));
    ctx->saved_data["sink"] = sink;
    ctx->saved_data["unit"] = unit;
    return x.view_as(x);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    sink_of(ctx)->leave_unit_backward(static_cast<int>(ctx->saved_data["unit"].toInt()));
    return {grads[0], {}, {}};
  }
};

// ---------------------------------------------------------------- dropout
std::vector<int64_t> pack_key(const DropoutKey& k) {
  std::vector<int64_t> v{static_cast<int64_t>(k.seed), k.step, k.site, k.seq_len};
  v.insert(v.end(), k.sequences.begin(), k.sequences.end());
  return v;
}
DropoutKey unpack_key(const std::vector<int64_t>& v, double p) {
  DropoutKey k;
  k.p = p;
  k.seed = static_cast<uint64_t>(v[0]);
  k.step = v[1];
  k.site = v[2];
  k.seq_len = v[3];
  k.sequences.assign(v.begin() + 4, v.end());
  return k;
}

struct DropoutFn : torch::autograd::Function<DropoutFn> {
  // Keeps its mask [rows, width], 1 byte per element.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, std::vector<int64_t> key, double p,
                            int64_t first_row) {
    const OpScope scope(kMemory);
    at::Tensor drop = dropout_mask(unpack_key(key, p), first_row, x.size(0), x.size(1));
    if (!x.device().is_cpu()) drop = drop.to(x.device());
    at::Tensor y = x.mul(1.0 / (1.0 - p));
    y.masked_fill_(drop, 0);
    ctx->save_for_backward({drop});
    ctx->saved_data["p"] = p;
    return y;
  }
  // Alive: dy and dx.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const OpScope scope(kMemory);
    memory_mark("bwd dropout");
    const at::Tensor drop = ctx->get_saved_variables()[0];
    at::Tensor dx = grads[0].mul(1.0 / (1.0 - ctx->saved_data["p"].toDouble()));
    dx.masked_fill_(drop, 0);
    return {dx, {}, {}, {}};
  }
};

// ---------------------------------------------------------------- full recompute
struct LayerHolder : torch::CustomClassHolder {
  explicit LayerHolder(std::function<at::Tensor(const at::Tensor&)> f) : fn(std::move(f)) {}
  std::function<at::Tensor(const at::Tensor&)> fn;
};

struct RecomputeFn : torch::autograd::Function<RecomputeFn> {
  // Keeps x only; the layer runs without recording anything (grad mode is off inside forward). params:
  // the trainable tensors the layer uses, so that its output needs a gradient when they do.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, at::TensorList params,
                            c10::intrusive_ptr<LayerHolder> layer) {
    at::Tensor y = layer->fn(x);
    ctx->save_for_backward({x});
    ctx->saved_data["layer"] = c10::IValue::make_capsule(layer);
    ctx->saved_data["params"] = static_cast<int64_t>(params.size());
    return y;
  }
  // Runs the layer again, recording its graph, and back-propagates dy through it (a reentrant backward,
  // as torch.utils.checkpoint's reentrant variant does): alive at its peak, everything the layer keeps
  // and its backward's working set.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    memory_mark("bwd recompute");
    const at::Tensor x = ctx->get_saved_variables()[0];
    const auto layer = c10::static_intrusive_pointer_cast<LayerHolder>(ctx->saved_data["layer"].toCapsule());
    at::Tensor input = x.detach();
    input.requires_grad_(x.requires_grad());
    at::Tensor y;
    {
      at::AutoGradMode grad(true);
      y = layer->fn(input);
    }
    torch::autograd::edge_list outputs;
    if (input.requires_grad()) outputs.push_back(torch::autograd::impl::gradient_edge(input));
    variable_list dx = torch::autograd::Engine::get_default_engine().execute(
        {torch::autograd::impl::gradient_edge(y)}, {grads[0]}, /*keep_graph=*/false, /*create_graph=*/false,
        /*accumulate_grad=*/false, outputs);
    y.reset();
    variable_list out(2 + static_cast<size_t>(ctx->saved_data["params"].toInt()));
    if (!dx.empty()) out[0] = dx[0];
    return out;
  }
};

OptTensor maybe(const at::Tensor& t) { return t.defined() ? OptTensor(t) : OptTensor(); }

}  // namespace

at::Tensor dropout(const at::Tensor& x, const DropoutKey& key, int64_t first_row) {
  if (!key.active()) return x;
  return DropoutFn::apply(x, pack_key(key), key.p, first_row);
}

at::Tensor recompute(const std::function<at::Tensor(const at::Tensor&)>& fn, const at::Tensor& x,
                     const std::vector<at::Tensor>& params) {
  if (!at::GradMode::is_enabled()) return fn(x);
  return RecomputeFn::apply(x, at::TensorList(params), c10::make_intrusive<LayerHolder>(fn));
}

at::Tensor norm(GradSink* sink, const at::Tensor& x, const at::Tensor& w, int64_t w_slot, const at::Tensor& bias,
                int64_t b_slot, double eps) {
  return NormFn::apply(x, w, maybe(bias), sink_id(sink), w_slot, b_slot, eps);
}

at::Tensor rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, int64_t heads, int64_t head_dim,
                int64_t seq_len) {
  return RopeFn::apply(x, cos, sin, heads, head_dim, seq_len);
}

at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up) { return SwiGluFn::apply(gate, up); }
at::Tensor gelu(const at::Tensor& x) { return GeluFn::apply(x); }

at::Tensor unit_boundary(GradSink* sink, const at::Tensor& x, int unit) {
  return BoundaryFn::apply(x, sink_id(sink), static_cast<int64_t>(unit));
}

}  // namespace paraplan::exec

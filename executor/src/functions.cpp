// Forward and backward of each decoder op. Each backward says, in its comment, what it keeps alive;
// planner/lowering/src/workload.cpp (framework "paraplan") models exactly that.
#include "functions.hpp"

#include <torch/autograd.h>

#include "paraplan/exec/op_timer.hpp"

#include <cmath>
#include <limits>

namespace paraplan::exec {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using OptTensor = c10::optional<at::Tensor>;

// The classes the step's time is counted in (op_timer.hpp).
constexpr const char* kGemm = "gemm";
constexpr const char* kMemory = "memory";
constexpr const char* kAttention = "attention";

GradSink* sink_of(AutogradContext* ctx) { return reinterpret_cast<GradSink*>(ctx->saved_data["sink"].toInt()); }
int64_t sink_id(GradSink* s) { return reinterpret_cast<int64_t>(s); }

// g += alpha * a . b without a temporary when the dtypes agree (BLAS gemm with beta = 1).
void accumulate_mm(at::Tensor g, const at::Tensor& a, const at::Tensor& b, double alpha = 1.0) {
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

at::Tensor opt(const OptTensor& t) { return t.has_value() ? *t : at::Tensor(); }

// Statistics, softmax and losses run in at least fp32: 16-bit inputs are widened, fp32 and fp64 kept.
bool is_wide(at::ScalarType t) { return t == at::kFloat || t == at::kDouble; }
at::Tensor wide(const at::Tensor& x) { return is_wide(x.scalar_type()) ? x : x.to(at::kFloat); }

// ---------------------------------------------------------------- linear (+ LoRA)
struct LinearFn : torch::autograd::Function<LinearFn> {
  // Keeps x, and x A^T [T, r] with an adapter (W, A, B are parameters: alive anyway).
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, const OptTensor& bias,
                            const OptTensor& a, const OptTensor& b, int64_t sink, int64_t ws, int64_t bs, int64_t as,
                            int64_t bbs, double scale) {
    const OpScope scope(kGemm);
    at::Tensor y = bias ? at::addmm(*bias, x, w.t()) : at::mm(x, w.t());
    at::Tensor t;
    if (a) {
      t = at::mm(x, a->t());
      at::addmm_out(y, y, t, b->t(), 1.0, scale);
    }
    ctx->save_for_backward({x, w, opt(a), opt(b), t});
    ctx->saved_data["sink"] = sink;
    ctx->saved_data["slots"] = std::vector<int64_t>{ws, bs, as, bbs};
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["has_bias"] = bias.has_value();
    return y;
  }
  // Alive at the peak of this backward: dy, dx, and with an adapter d(xA^T) [T, r].
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const OpScope scope(kGemm);
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1], &a = saved[2], &b = saved[3], &t = saved[4];
    const at::Tensor dy = grads[0].contiguous();
    GradSink* sink = sink_of(ctx);
    const auto slots = ctx->saved_data["slots"].toIntVector();
    const double scale = ctx->saved_data["scale"].toDouble();
    if (slots[0] != kNoSlot) {
      accumulate_mm(sink->slot(slots[0]), dy.t(), x);
      sink->arrived(slots[0]);
    }
    if (slots[1] != kNoSlot) {
      accumulate(sink->slot(slots[1]), dy.sum(0));
      sink->arrived(slots[1]);
    }
    at::Tensor dt;
    if (a.defined()) {
      if (slots[3] != kNoSlot) {
        accumulate_mm(sink->slot(slots[3]), dy.t(), t, scale);
        sink->arrived(slots[3]);
      }
      dt = at::mm(dy, b).mul_(scale);
      if (slots[2] != kNoSlot) {
        accumulate_mm(sink->slot(slots[2]), dt.t(), x);
        sink->arrived(slots[2]);
      }
    }
    at::Tensor dx;
    if (ctx->needs_input_grad(0)) {
      dx = at::mm(dy, w);
      if (dt.defined()) at::addmm_out(dx, dx, dt, a);
    }
    return {dx, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
  }
};

// ---------------------------------------------------------------- embedding
struct EmbeddingFn : torch::autograd::Function<EmbeddingFn> {
  // Keeps the token ids.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& ids, const at::Tensor& w, const OptTensor& pos,
                            int64_t sink, int64_t ws, int64_t ps, int64_t seq_len) {
    const OpScope scope(kMemory);
    at::Tensor out = w.index_select(0, ids);
    if (pos) out.view({-1, seq_len, w.size(1)}).add_(pos->narrow(0, 0, seq_len));
    ctx->save_for_backward({ids});
    ctx->saved_data["sink"] = sink;
    ctx->saved_data["slots"] = std::vector<int64_t>{ws, ps, seq_len};
    return out;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const OpScope scope(kMemory);
    const at::Tensor ids = ctx->get_saved_variables()[0];
    const at::Tensor dy = grads[0].contiguous();
    GradSink* sink = sink_of(ctx);
    const auto slots = ctx->saved_data["slots"].toIntVector();
    if (slots[0] != kNoSlot) {
      at::Tensor g = sink->slot(slots[0]);
      g.index_add_(0, ids, dy.scalar_type() == g.scalar_type() ? dy : dy.to(g.scalar_type()));
      sink->arrived(slots[0]);
    }
    if (slots[1] != kNoSlot) {
      const int64_t s = slots[2];
      accumulate(sink->slot(slots[1]).narrow(0, 0, s), dy.view({-1, s, dy.size(1)}).sum(0));
      sink->arrived(slots[1]);
    }
    return {{}, {}, {}, {}, {}, {}, {}};
  }
};

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
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1], &rstd = saved[2], &mean = saved[3];
    const at::Tensor dy = grads[0].contiguous();
    GradSink* sink = sink_of(ctx);
    const auto slots = ctx->saved_data["slots"].toIntVector();
    const at::Tensor xf = wide(x);
    at::Tensor xhat = mean.defined() ? (xf - mean).mul_(rstd) : xf * rstd;
    if (slots[0] != kNoSlot) {
      accumulate(sink->slot(slots[0]), (dy * xhat).sum(0));
      sink->arrived(slots[0]);
    }
    if (slots[1] != kNoSlot) {
      accumulate(sink->slot(slots[1]), dy.sum(0));
      sink->arrived(slots[1]);
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
    const auto d = ctx->saved_data["dims"].toIntVector();
    const at::Tensor dy = grads[0].contiguous();
    at::Tensor dx = at::empty_like(dy);
    rotate(dy, dx, ctx->saved_data["cos"].toTensor(), ctx->saved_data["sin"].toTensor(), d[0], d[1], d[2], -1.0);
    return {dx, {}, {}, {}, {}, {}};
  }
};

// ---------------------------------------------------------------- attention
struct AttnDims {
  int64_t b, s, h, kv, hd;
  int64_t g() const { return h / kv; }
};

// [b*s, H*hd] (heads = KV groups of g) <-> [b*KV, g*s, hd]: query rows of a KV group stacked, so that
// one batched matmul per KV head serves its g query heads without repeating K and V.
at::Tensor q_to_groups(const at::Tensor& q, const AttnDims& d) {
  return q.view({d.b, d.s, d.kv, d.g(), d.hd}).permute({0, 2, 3, 1, 4}).reshape({d.b * d.kv, d.g() * d.s, d.hd});
}
at::Tensor q_from_groups(const at::Tensor& qg, const AttnDims& d) {
  return qg.view({d.b, d.kv, d.g(), d.s, d.hd}).permute({0, 3, 1, 2, 4}).reshape({d.b * d.s, d.h * d.hd});
}
at::Tensor kv_to_groups(const at::Tensor& k, const AttnDims& d) {
  return k.view({d.b, d.s, d.kv, d.hd}).permute({0, 2, 1, 3}).reshape({d.b * d.kv, d.s, d.hd});
}
at::Tensor kv_from_groups(const at::Tensor& kg, const AttnDims& d) {
  return kg.view({d.b, d.kv, d.s, d.hd}).permute({0, 2, 1, 3}).reshape({d.b * d.s, d.kv * d.hd});
}

// Scaled, causally masked scores [b*KV, g*s, s], in fp32.
at::Tensor scores(const at::Tensor& qg, const at::Tensor& kg, const at::Tensor& mask, const AttnDims& d) {
  at::Tensor sc = wide(at::bmm(qg, kg.transpose(1, 2)));
  sc.mul_(1.0 / std::sqrt(static_cast<double>(d.hd)));
  sc.view({d.b * d.kv, d.g(), d.s, d.s}).masked_fill_(mask, -std::numeric_limits<float>::infinity());
  return sc;
}

struct AttentionFn : torch::autograd::Function<AttentionFn> {
  // Keeps q, k, v and the fp32 log-sum-exp [b*H*s] (flash), or q, k, v and the probabilities (eager).
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& mask, int64_t b, int64_t s, int64_t h, int64_t kv, int64_t hd, bool flash) {
    const OpScope scope(kAttention);
    const AttnDims d{b, s, h, kv, hd};
    at::Tensor p = scores(q_to_groups(q, d), kv_to_groups(k, d), mask, d);
    const at::Tensor m = at::amax(p, {-1}, true);
    p.sub_(m).exp_();
    const at::Tensor l = p.sum(-1, true);
    p.div_(l);
    const at::Tensor vg = kv_to_groups(v, d);
    at::Tensor out = q_from_groups(at::bmm(p.scalar_type() == vg.scalar_type() ? p : p.to(vg.scalar_type()), vg), d);
    if (flash)
      ctx->save_for_backward({q, k, v, l.log_().add_(m)});
    else
      ctx->save_for_backward({q, k, v, p});
    ctx->saved_data["mask"] = mask;
    ctx->saved_data["dims"] = std::vector<int64_t>{b, s, h, kv, hd, flash ? 1 : 0};
    return out;
  }
  // dV = P^T dO; dP = dO V^T; dS = P * (dP - rowsum(P * dP)); dQ = dS K / sqrt(hd); dK = dS^T Q / sqrt(hd)
  // (the softmax Jacobian; FlashAttention-2 Alg. 2 computes rowsum(P*dP) as rowsum(dO*O)). Alive at
  // its peak: P and dP [b*H, s, s] fp32 and the regrouped q, k, v, dO and their gradients.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const OpScope scope(kAttention);
    const auto saved = ctx->get_saved_variables();
    const auto dims = ctx->saved_data["dims"].toIntVector();
    const AttnDims d{dims[0], dims[1], dims[2], dims[3], dims[4]};
    const bool flash = dims[5] != 0;
    const at::Tensor qg = q_to_groups(saved[0], d), kg = kv_to_groups(saved[1], d), vg = kv_to_groups(saved[2], d);
    const at::Tensor dog = q_to_groups(grads[0].contiguous(), d);
    at::Tensor p;
    if (flash) {
      p = scores(qg, kg, ctx->saved_data["mask"].toTensor(), d);
      p.sub_(saved[3]).exp_();
    } else {
      p = saved[3];
    }
    const at::Tensor p_c = p.scalar_type() == dog.scalar_type() ? p : p.to(dog.scalar_type());
    const at::Tensor dvg = at::bmm(p_c.transpose(1, 2), dog);
    at::Tensor dp = wide(at::bmm(dog, vg.transpose(1, 2)));
    dp.mul_(p);
    const at::Tensor rows = dp.sum(-1, true);
    dp.sub_(p.mul_(rows));  // dS (p is consumed)
    dp.mul_(1.0 / std::sqrt(static_cast<double>(d.hd)));
    const at::Tensor ds = dp.scalar_type() == qg.scalar_type() ? dp : dp.to(qg.scalar_type());
    const at::Tensor dq = q_from_groups(at::bmm(ds, kg), d);
    const at::Tensor dk = kv_from_groups(at::bmm(ds.transpose(1, 2), qg), d);
    return {dq, dk, kv_from_groups(dvg, d), {}, {}, {}, {}, {}, {}, {}};
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
    return {at::gelu_backward(grads[0], ctx->get_saved_variables()[0], "tanh")};
  }
};

// ---------------------------------------------------------------- loss
struct CrossEntropyFn : torch::autograd::Function<CrossEntropyFn> {
  // Keeps the logits, their fp32 log-sum-exp [T] and the targets.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& logits, const at::Tensor& targets, double scale) {
    const OpScope scope(kMemory);
    const at::Tensor lf = wide(logits);
    const at::Tensor lse = at::logsumexp(lf, {1}, false);
    const at::Tensor picked = lf.gather(1, targets.unsqueeze(1)).squeeze(1);
    at::Tensor loss = (lse - picked).sum().mul_(scale);
    ctx->save_for_backward({logits, targets, lse});
    ctx->saved_data["scale"] = scale;
    return loss;
  }
  // d logits = (softmax(logits) - onehot(target)) * g * scale. Alive at its peak: the logits, their fp32
  // gradient [T, V] and, for 16-bit logits, its 16-bit copy.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const OpScope scope(kMemory);
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &logits = saved[0], &targets = saved[1], &lse = saved[2];
    const double g = grads[0].item<double>() * ctx->saved_data["scale"].toDouble();
    at::Tensor d = at::sub(logits, lse.unsqueeze(1)).exp_();  // fp32 (type promotion with the fp32 lse)
    d.scatter_add_(1, targets.unsqueeze(1), at::full({targets.size(0), 1}, -1.0, d.options()));
    d.mul_(g);
    if (d.scalar_type() != logits.scalar_type()) d = d.to(logits.scalar_type());
    return {d, {}, {}};
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

OptTensor maybe(const at::Tensor& t) { return t.defined() ? OptTensor(t) : OptTensor(); }

}  // namespace

at::Tensor linear(GradSink* sink, const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias,
                  const at::Tensor& lora_a, const at::Tensor& lora_b, const LinearArgs& a) {
  return LinearFn::apply(x, w, maybe(bias), maybe(lora_a), maybe(lora_b), sink_id(sink), a.w, a.b, a.a, a.bb, a.scale);
}

at::Tensor embedding(GradSink* sink, const at::Tensor& ids, const at::Tensor& w, int64_t w_slot, const at::Tensor& pos,
                     int64_t pos_slot, int64_t seq_len) {
  return EmbeddingFn::apply(ids, w, maybe(pos), sink_id(sink), w_slot, pos_slot, seq_len);
}

at::Tensor norm(GradSink* sink, const at::Tensor& x, const at::Tensor& w, int64_t w_slot, const at::Tensor& bias,
                int64_t b_slot, double eps) {
  return NormFn::apply(x, w, maybe(bias), sink_id(sink), w_slot, b_slot, eps);
}

at::Tensor rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, int64_t heads, int64_t head_dim,
                int64_t seq_len) {
  return RopeFn::apply(x, cos, sin, heads, head_dim, seq_len);
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                     int64_t batch, int64_t seq_len, int64_t heads, int64_t kv_heads, int64_t head_dim, bool flash) {
  return AttentionFn::apply(q, k, v, mask, batch, seq_len, heads, kv_heads, head_dim, flash);
}

at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up) { return SwiGluFn::apply(gate, up); }
at::Tensor gelu(const at::Tensor& x) { return GeluFn::apply(x); }

at::Tensor cross_entropy(const at::Tensor& logits, const at::Tensor& targets, double scale) {
  return CrossEntropyFn::apply(logits, targets, scale);
}

at::Tensor unit_boundary(GradSink* sink, const at::Tensor& x, int unit) {
  return BoundaryFn::apply(x, sink_id(sink), static_cast<int64_t>(unit));
}

}  // namespace paraplan::exec

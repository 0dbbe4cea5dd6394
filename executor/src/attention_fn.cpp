// Causal grouped-query attention with optional attention dropout and selective recompute, and the
// dropout masks every op shares (a counter-based draw, so that any rank and any recomputation gets the
// same mask for the same element).
#include <torch/autograd.h>

#include <cmath>
#include <limits>

#include "functions.hpp"
#include "splitmix.hpp"
#include "paraplan/exec/memory_meter.hpp"
#include "tp_comm.hpp"
#include "op_classes.hpp"

namespace paraplan::exec {

namespace {

uint64_t mix(uint64_t z) { return splitmix64(z); }

// The draw of one element: uniform in [0, 1) from 53 bits.
bool dropped(uint64_t base, uint64_t element, double p) {
  return static_cast<double>(mix(base + element) >> 11) * (1.0 / 9007199254740992.0) < p;
}

uint64_t site_base(const DropoutKey& k) {
  return mix(mix(mix(k.seed ^ 0x5eed5eed5eed5eedull) + static_cast<uint64_t>(k.step)) + static_cast<uint64_t>(k.site));
}

uint64_t sequence_base(uint64_t site, int64_t sequence) { return mix(site + mix(static_cast<uint64_t>(sequence))); }

// Attention dropout mask in the grouped layout [b*KV, g*s, s] (see q_to_groups), true where dropped;
// element (sequence, global head, query, key).
at::Tensor attention_mask(const DropoutKey& k, int64_t b, int64_t kv, int64_t g, int64_t s, int64_t first_head,
                          const at::TensorOptions& device) {
  at::Tensor m = at::empty({b * kv, g * s, s}, at::TensorOptions().dtype(at::kBool));
  bool* out = m.data_ptr<bool>();
  const uint64_t site = site_base(k);
  for (int64_t e = 0; e < b; ++e) {
    const uint64_t base = sequence_base(site, k.sequences.at(static_cast<size_t>(e)));
    for (int64_t h = 0; h < kv * g; ++h) {
      const uint64_t head = static_cast<uint64_t>(first_head + h);
      for (int64_t i = 0; i < s; ++i)
        for (int64_t j = 0; j < s; ++j) *out++ = dropped(base, (head * s + i) * s + j, k.p);
    }
  }
  return device.device().is_cpu() ? m : m.to(device.device());
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

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

// Softmax of the scores in place; returns the fp32 log-sum-exp [b*KV, g*s, 1].
at::Tensor softmax_(at::Tensor& p) {
  const at::Tensor m = at::amax(p, {-1}, true);
  p.sub_(m).exp_();
  const at::Tensor l = p.sum(-1, true);
  p.div_(l);
  return l.log_().add_(m);
}

// Probabilities after dropout, in the dtype of v: P * keep / (1 - p).
at::Tensor dropped_out(const at::Tensor& p, const at::Tensor& drop, double prob) {
  at::Tensor pd = p.mul(1.0 / (1.0 - prob));
  pd.masked_fill_(drop, 0);
  return pd;
}

struct AttentionFn : torch::autograd::Function<AttentionFn> {
  // Keeps q, k, v and: the fp32 log-sum-exp [b*H*s] (flash); the probabilities [b, H, s, s] and, with
  // dropout, its 1-byte mask (eager); nothing more (selective recompute).
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& mask, std::vector<int64_t> dims, std::vector<int64_t> key_ints,
                            double p_drop) {
    const OpScope scope(kAttention);
    const AttnDims d{dims[0], dims[1], dims[2], dims[3], dims[4]};
    const bool flash = dims[5] != 0, recompute = dims[6] != 0;
    const DropoutKey key = unpack(key_ints, p_drop, d.s);
    at::Tensor p = scores(q_to_groups(q, d), kv_to_groups(k, d), mask, d);
    const at::Tensor lse = softmax_(p);
    const at::Tensor vg = kv_to_groups(v, d);
    at::Tensor drop;
    at::Tensor out;
    if (key.active()) {
      drop = attention_mask(key, d.b, d.kv, d.g(), d.s, dims[7], p.options());
      const at::Tensor pd = dropped_out(p, drop, key.p);
      out = q_from_groups(at::bmm(pd.scalar_type() == vg.scalar_type() ? pd : pd.to(vg.scalar_type()), vg), d);
    } else {
      out = q_from_groups(at::bmm(p.scalar_type() == vg.scalar_type() ? p : p.to(vg.scalar_type()), vg), d);
    }
    if (recompute)
      ctx->save_for_backward({q, k, v, at::Tensor(), at::Tensor()});
    else if (flash)
      ctx->save_for_backward({q, k, v, lse, at::Tensor()});
    else
      ctx->save_for_backward({q, k, v, p, drop});
    ctx->saved_data["mask"] = mask;
    ctx->saved_data["dims"] = dims;
    ctx->saved_data["key"] = key_ints;
    ctx->saved_data["p_drop"] = p_drop;
    return out;
  }
  // dV = Pd^T dO; dPd = dO V^T; dP = dPd * keep / (1 - p); dS = P * (dP - rowsum(P * dP)); dQ = dS K /
  // sqrt(hd); dK = dS^T Q / sqrt(hd) (the softmax Jacobian; FlashAttention-2 Alg. 2 computes rowsum(P*dP)
  // as rowsum(dO*O)). Alive at its peak: P and dP [b*H, s, s] fp32 (and the dropped-out P and the mask
  // with dropout) and the regrouped q, k, v, dO and their gradients.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const OpScope scope(kAttention);
    memory_mark("bwd attention");
    const auto saved = ctx->get_saved_variables();
    const auto dims = ctx->saved_data["dims"].toIntVector();
    const AttnDims d{dims[0], dims[1], dims[2], dims[3], dims[4]};
    const bool flash = dims[5] != 0, recompute = dims[6] != 0;
    const DropoutKey key = unpack(ctx->saved_data["key"].toIntVector(), ctx->saved_data["p_drop"].toDouble(), d.s);
    const at::Tensor qg = q_to_groups(saved[0], d), kg = kv_to_groups(saved[1], d), vg = kv_to_groups(saved[2], d);
    const at::Tensor dog = q_to_groups(grads[0].contiguous(), d);
    at::Tensor p, drop;
    if (recompute) {
      p = scores(qg, kg, ctx->saved_data["mask"].toTensor(), d);
      softmax_(p);
    } else if (flash) {
      p = scores(qg, kg, ctx->saved_data["mask"].toTensor(), d);
      p.sub_(saved[3]).exp_();
    } else {
      p = saved[3];
      drop = saved[4];
    }
    if (key.active() && !drop.defined()) drop = attention_mask(key, d.b, d.kv, d.g(), d.s, dims[7], p.options());
    at::Tensor dvg;
    {
      const at::Tensor pd = key.active() ? dropped_out(p, drop, key.p) : p;
      const at::Tensor pd_c = pd.scalar_type() == dog.scalar_type() ? pd : pd.to(dog.scalar_type());
      dvg = at::bmm(pd_c.transpose(1, 2), dog);
    }
    at::Tensor dp = wide(at::bmm(dog, vg.transpose(1, 2)));
    if (key.active()) dp.mul_(1.0 / (1.0 - key.p)).masked_fill_(drop, 0);
    dp.mul_(p);
    const at::Tensor rows = dp.sum(-1, true);
    dp.sub_(p.mul_(rows));  // dS (p is consumed)
    dp.mul_(1.0 / std::sqrt(static_cast<double>(d.hd)));
    const at::Tensor ds = dp.scalar_type() == qg.scalar_type() ? dp : dp.to(qg.scalar_type());
    const at::Tensor dq = q_from_groups(at::bmm(ds, kg), d);
    const at::Tensor dk = kv_from_groups(at::bmm(ds.transpose(1, 2), qg), d);
    return {dq, dk, kv_from_groups(dvg, d), {}, {}, {}, {}};
  }

  // The dropout key travels as integers: seed, step, site, then the sequences.
  static DropoutKey unpack(const std::vector<int64_t>& v, double p, int64_t s) {
    DropoutKey k;
    k.p = p;
    if (p <= 0) return k;
    k.seed = static_cast<uint64_t>(v[0]);
    k.step = v[1];
    k.site = v[2];
    k.sequences.assign(v.begin() + 3, v.end());
    k.seq_len = s;
    return k;
  }
};

std::vector<int64_t> pack(const DropoutKey& k) {
  std::vector<int64_t> v{static_cast<int64_t>(k.seed), k.step, k.site};
  v.insert(v.end(), k.sequences.begin(), k.sequences.end());
  return v;
}

}  // namespace

at::Tensor dropout_mask(const DropoutKey& k, int64_t first_row, int64_t rows, int64_t width) {
  at::Tensor m = at::empty({rows, width}, at::TensorOptions().dtype(at::kBool));
  bool* out = m.data_ptr<bool>();
  const uint64_t site = site_base(k);
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t row = first_row + i, pos = row % k.seq_len;
    const uint64_t base = sequence_base(site, k.sequences.at(static_cast<size_t>(row / k.seq_len)));
    for (int64_t c = 0; c < width; ++c) *out++ = dropped(base, static_cast<uint64_t>(pos * width + c), k.p);
  }
  return m;
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                     const AttentionArgs& a) {
  return AttentionFn::apply(
      q, k, v, mask,
      std::vector<int64_t>{a.batch, a.seq_len, a.heads, a.kv_heads, a.head_dim, a.flash ? 1 : 0, a.recompute ? 1 : 0,
                           a.first_head},
      pack(a.dropout), a.dropout.p);
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                     int64_t batch, int64_t seq_len, int64_t heads, int64_t kv_heads, int64_t head_dim, bool flash) {
  AttentionArgs a;
  a.batch = batch;
  a.seq_len = seq_len;
  a.heads = heads;
  a.kv_heads = kv_heads;
  a.head_dim = head_dim;
  a.flash = flash;
  return attention(q, k, v, mask, a);
}

}  // namespace paraplan::exec

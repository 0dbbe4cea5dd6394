#include "adamw.hpp"

#include <ATen/Parallel.h>

#include <cmath>

#include "paraplan/exec/memory_meter.hpp"

namespace paraplan::exec {

namespace {

struct FusedArgs {
  float b1, b2, decay, wd, step_size, bc2_sqrt, eps;
  bool decoupled;
};

// One pass over the raw floats. Compiled for AVX-512, AVX2 and baseline x86-64 and picked at run time
// (GCC function multi-versioning), so the binary still runs on any x86-64 CPU.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void fused_update(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v, int64_t begin,
                  int64_t end, FusedArgs a) {
  for (int64_t i = begin; i < end; ++i) {
    float gi = g[i];
    if (a.decoupled)
      p[i] *= a.decay;
    else
      gi += a.wd * p[i];
    m[i] = a.b1 * m[i] + (1 - a.b1) * gi;
    v[i] = a.b2 * v[i] + (1 - a.b2) * gi * gi;
    p[i] -= a.step_size * m[i] / (std::sqrt(v[i]) / a.bc2_sqrt + a.eps);
  }
}

}  // namespace

AdamW::AdamW(ZeroEngine& engine, const AdamWOptions& opt) : engine_(engine), opt_(opt) {
  CategoryScope cat(MemCategory::optimizer);
  for (int u = 0; u < engine_.units(); ++u) {
    const at::Tensor values = engine_.optimizer_slice(u).values;
    m_.push_back(at::zeros_like(values, values.options().dtype(at::kFloat)));
    v_.push_back(at::zeros_like(values, values.options().dtype(at::kFloat)));
  }
}

int64_t AdamW::state_bytes() const {
  int64_t n = 0;
  for (size_t i = 0; i < m_.size(); ++i) n += static_cast<int64_t>(m_[i].nbytes() + v_[i].nbytes());
  return n;
}

AdamW::Moments AdamW::owned_moments(int unit) {
  at::Tensor& m = m_.at(static_cast<size_t>(unit));
  at::Tensor& v = v_.at(static_cast<size_t>(unit));
  if (engine_.options().zero >= 1) return {m, v};
  const int64_t n = engine_.dp().size(), chunk = m.numel() / n, begin = engine_.dp().rank() * chunk;
  return {m.narrow(0, begin, chunk), v.narrow(0, begin, chunk)};
}

void AdamW::replicate_owned() {
  if (engine_.options().zero >= 1 || engine_.dp().size() == 1) return;
  CategoryScope cat(MemCategory::buffers);
  for (size_t u = 0; u < m_.size(); ++u)
    if (m_[u].numel() > 0) {
      engine_.dp().allgather(m_[u]);
      engine_.dp().allgather(v_[u]);
    }
}

void AdamW::update(at::Tensor& p, const at::Tensor& g, at::Tensor& m, at::Tensor& v, const AdamWOptions& o,
                   int64_t t) {
  const double bc1 = 1 - std::pow(o.beta1, static_cast<double>(t));
  const double bc2_sqrt = std::sqrt(1 - std::pow(o.beta2, static_cast<double>(t)));
  const double step_size = o.lr / bc1;
  const bool fused_cpu = p.device().is_cpu() && p.scalar_type() == at::kFloat && g.scalar_type() == at::kFloat &&
                         p.is_contiguous() && g.is_contiguous();
  if (fused_cpu) {
    FusedArgs a{static_cast<float>(o.beta1), static_cast<float>(o.beta2), static_cast<float>(1 - o.lr * o.weight_decay),
                static_cast<float>(o.weight_decay), static_cast<float>(step_size), static_cast<float>(bc2_sqrt),
                static_cast<float>(o.eps), o.decoupled};
    float* pp = p.data_ptr<float>();
    const float* gp = g.data_ptr<float>();
    float* mp = m.data_ptr<float>();
    float* vp = v.data_ptr<float>();
    at::parallel_for(0, p.numel(), 1 << 15, [&](int64_t begin, int64_t end) { fused_update(pp, gp, mp, vp, begin, end, a); });
    return;
  }
  // Any device and dtype: the same arithmetic with ATen ops; one temporary (denom) of the slice's size.
  at::NoGradGuard no_grad;
  at::Tensor gf = g.scalar_type() == at::kFloat ? g : g.to(at::kFloat);
  if (o.decoupled)
    p.mul_(1 - o.lr * o.weight_decay);
  else if (o.weight_decay != 0)
    gf = gf.add(p, o.weight_decay);
  m.mul_(o.beta1).add_(gf, 1 - o.beta1);
  v.mul_(o.beta2).addcmul_(gf, gf, 1 - o.beta2);
  at::Tensor denom = v.sqrt().div_(bc2_sqrt).add_(o.eps);
  p.addcdiv_(m, denom, -step_size);
}

void AdamW::step() {
  ++t_;
  at::NoGradGuard no_grad;
  for (int u = 0; u < engine_.units(); ++u) {
    ZeroEngine::OptimizerSlice s = engine_.optimizer_slice(u);
    if (s.values.numel() == 0) continue;
    update(s.values, s.grads, m_[static_cast<size_t>(u)], v_[static_cast<size_t>(u)], opt_, t_);
    if (s.compute.defined()) s.compute.copy_(s.values);  // 16-bit parameters from the fp32 master
  }
  engine_.after_optimizer();
}

}  // namespace paraplan::exec

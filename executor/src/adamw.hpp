#pragma once
// AdamW (Loshchilov & Hutter 2019, Alg. 2) in the exact form of torch.optim.AdamW (1.13
// _single_tensor_adamw): p *= 1 - lr*wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps). Adam (Kingma & Ba 2015) adds wd*p to g instead.
// The states are flat fp32 buffers per engine unit, allocated once; on CPU the update is one fused
// loop over raw floats, so a step allocates nothing.
#include <ATen/ATen.h>

#include <vector>

#include "zero_engine.hpp"

namespace paraplan::exec {

struct AdamWOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  bool decoupled = true;  // false: Adam with L2 weight decay
};

class AdamW {
 public:
  AdamW(ZeroEngine& engine, const AdamWOptions& opt);
  void step();  // one update of every unit's own slice, then engine.after_optimizer()
  int64_t steps() const { return t_; }
  int64_t state_bytes() const;

  // Training checkpoints: the moments this rank owns for a unit (chunk rank() of the engine's
  // sharding; under ZeRO-0, where every rank holds them whole, views of that chunk), and after a resume
  // filled them, replicate_owned() rebuilds the whole ones (a collective) and set_steps() the step count
  // that the bias corrections use.
  struct Moments {
    at::Tensor exp_avg, exp_avg_sq;
  };
  Moments owned_moments(int unit);
  void replicate_owned();
  void set_steps(int64_t t) { t_ = t; }

  // The update on plain tensors (exposed for tests that compare it with the formula).
  static void update(at::Tensor& p, const at::Tensor& g, at::Tensor& m, at::Tensor& v, const AdamWOptions& o,
                     int64_t t);

 private:
  ZeroEngine& engine_;
  AdamWOptions opt_;
  std::vector<at::Tensor> m_, v_;
  int64_t t_ = 0;
};

}  // namespace paraplan::exec

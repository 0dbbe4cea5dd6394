// AdamW: the first step by hand, and the fused CPU loop against the ATen formula over several steps.
#include <gtest/gtest.h>

#include <cmath>

#include "adamw.hpp"

using namespace paraplan::exec;

TEST(AdamW, FirstStepByHand) {
  // Step 1: m = (1-b1) g, v = (1-b2) g^2; the bias corrections make m_hat = g, v_hat = g^2, so
  // p <- p (1 - lr wd) - lr g / (|g| + eps) (Loshchilov & Hutter 2019, Alg. 2).
  AdamWOptions o;
  o.lr = 0.1;
  o.weight_decay = 0.5;
  at::Tensor p = at::tensor({1.0f, -2.0f, 0.5f}), g = at::tensor({0.3f, -4.0f, 0.0f});
  at::Tensor m = at::zeros({3}), v = at::zeros({3});
  AdamW::update(p, g, m, v, o, 1);
  const float expect[3] = {static_cast<float>(1.0 * 0.95 - 0.1 * 0.3 / (0.3 + 1e-8)),
                           static_cast<float>(-2.0 * 0.95 + 0.1 * 4.0 / (4.0 + 1e-8)), static_cast<float>(0.5 * 0.95)};
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(p[i].item<float>(), expect[i], 1e-6) << i;
  EXPECT_NEAR(m[1].item<float>(), -0.4f, 1e-7);
  EXPECT_NEAR(v[1].item<float>(), 0.001 * 16, 1e-6);  // (1 - b2) with b2 = 0.999 rounded to float
}

TEST(AdamW, FusedLoopEqualsTheAtenFormula) {
  // float32 takes the fused loop; float64 the ATen path (torch.optim.AdamW's sequence of ops).
  AdamWOptions o;
  o.lr = 1e-2;
  o.weight_decay = 0.1;
  at::manual_seed(3);
  at::Tensor p32 = at::randn({1000}), m32 = at::zeros({1000}), v32 = at::zeros({1000});
  at::Tensor p64 = p32.to(at::kDouble), m64 = at::zeros({1000}, at::kDouble), v64 = at::zeros({1000}, at::kDouble);
  for (int t = 1; t <= 5; ++t) {
    const at::Tensor g = at::randn({1000});
    AdamW::update(p32, g, m32, v32, o, t);
    AdamW::update(p64, g.to(at::kDouble), m64, v64, o, t);
  }
  EXPECT_LT((p32.to(at::kDouble) - p64).abs().max().item<double>(), 1e-6);
  o.decoupled = false;  // Adam with L2 weight decay takes the same two paths
  for (int t = 1; t <= 3; ++t) {
    const at::Tensor g = at::randn({1000});
    AdamW::update(p32, g, m32, v32, o, t);
    AdamW::update(p64, g.to(at::kDouble), m64, v64, o, t);
  }
  EXPECT_LT((p32.to(at::kDouble) - p64).abs().max().item<double>(), 1e-6);
}

// QLoRA's NF4 storage (executor/src/nf4.cpp) against values derived by hand from Dettmers et al. 2023.
#include <gtest/gtest.h>

#include <cmath>

#include "nf4.hpp"

using namespace paraplan::exec;

TEST(Nf4, TablesAreThePapersAndBitsandbytes) {
  // NF4 (QLoRA Appendix E): 16 values from -1 to 1 with an exact zero at index 7.
  EXPECT_EQ(nf4_values()[0], -1.0f);
  EXPECT_EQ(nf4_values()[7], 0.0f);
  EXPECT_EQ(nf4_values()[15], 1.0f);
  EXPECT_FLOAT_EQ(nf4_values()[8], 0.07958029955625534f);
  // The dynamic 8-bit type: for exponent i the 2^i midpoints of linspace(0.1, 1, 2^i + 1) times 10^(i-6),
  // both signs, then 0 and 1. Its most negative value is the largest midpoint of i = 6 negated:
  // -(1 - 0.9 / 128) = -0.99296875; the smallest positive is 10^-6 * (0.1 + 1) / 2 = 5.5e-7.
  const float* d = dynamic8_values();
  EXPECT_FLOAT_EQ(d[0], -0.99296875f);
  EXPECT_EQ(d[255], 1.0f);
  for (int i = 1; i < 256; ++i) EXPECT_LT(d[i - 1], d[i]) << i;
  int zero = -1;
  for (int i = 0; i < 256; ++i)
    if (d[i] == 0.0f) zero = i;
  EXPECT_EQ(zero, 127);  // 127 negative values before it
  EXPECT_FLOAT_EQ(d[128], 5.5e-7f);
}

TEST(Nf4, BytesAreCodesBlockMaximaTheirScalesAndTheMean) {
  // 4,096 weights: 2,048 bytes of codes, 64 block maxima of 1 byte, one fp32 scale for the 64 (< 256),
  // one fp32 mean.
  EXPECT_EQ(nf4_bytes(4096), 2048 + 64 + 4 + 4);
  // 10,240 = 160 blocks of 64; 32,768 = 512 blocks: two second-level blocks.
  EXPECT_EQ(nf4_bytes(10240), 5120 + 160 + 4 + 4);
  EXPECT_EQ(nf4_bytes(32768), 16384 + 512 + 8 + 4);
  // An odd count rounds its codes and its last block up.
  EXPECT_EQ(nf4_bytes(65), 33 + 2 + 4 + 4);
}

TEST(Nf4, ValuesOnTheGridComeBackExactly) {
  // One block of 64 weights, each an NF4 value times 0.5: its maximum is 0.5, the codes are exact, and the
  // only maximum is the mean, so it is stored as offset 0.5 with a centred value of 0 (absmax2 = 0):
  // dequantised scale 0 * 0 + 0.5 = 0.5 exactly.
  at::Tensor w = at::empty({64}, at::kFloat);
  for (int i = 0; i < 64; ++i) w[i] = nf4_values()[(i * 5) % 16] * 0.5f;
  const Nf4Tensor q = nf4_quantize(w, at::kCPU);
  EXPECT_EQ(q.codes.numel(), 32);
  at::Tensor out = at::empty({64}, at::kFloat);
  nf4_dequantize(q, out);
  EXPECT_TRUE(at::equal(out, w));
}

TEST(Nf4, RoundTripErrorIsBoundedByTheGridSpacing) {
  // Gaussian weights in 300 blocks (two second-level blocks): each weight comes back within half of the
  // widest NF4 gap (0.3038 between 0.6962 and 1.0, and between -1 and -0.6962) times its block's maximum,
  // plus the double quantisation of that maximum (the dynamic type's relative spacing below 1 is 0.9/128
  // at most: 0.7% of absmax2).
  at::manual_seed(3);
  const at::Tensor w = at::randn({300 * 64}) * 0.02;
  const Nf4Tensor q = nf4_quantize(w, at::kCPU);
  at::Tensor out = at::empty_like(w);
  nf4_dequantize(q, out);
  const at::Tensor blocks = w.view({300, 64}).abs().amax(1, true);
  const double absmax2 = (blocks - blocks.mean()).abs().max().item<double>();
  const at::Tensor bound = blocks * (0.3038 / 2) + 0.0071 * absmax2 * 1.01;
  EXPECT_TRUE(((out - w).view({300, 64}).abs() <= bound).all().item<bool>());
}

#include "nf4.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

namespace paraplan::exec {

namespace {

// NF4: the quantiles of N(0, 1) normalised to [-1, 1] with an exact zero (Dettmers et al. 2023, §3 and
// Appendix E; the values bitsandbytes ships).
constexpr std::array<float, 16> kNf4 = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
    -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
    0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f,
    1.0f};

// bitsandbytes' dynamic 8-bit data type (functional.create_dynamic_map(signed=True), after Dettmers 2015,
// "8-Bit Approximations for Parallelism in Deep Learning"): for exponents i = 0..6, 2^i fractions (the
// midpoints of linspace(0.1, 1, 2^i + 1)) times 10^(i - 6), both signs, then 0 and 1; ascending.
std::vector<float> make_dynamic8() {
  std::vector<double> data;
  for (int i = 0; i < 7; ++i) {
    const int items = (1 << i) + 1;
    for (int j = 0; j + 1 < items; ++j) {
      const double lo = 0.1 + 0.9 * j / (items - 1), hi = 0.1 + 0.9 * (j + 1) / (items - 1);
      const double v = std::pow(10.0, i - 6) * (lo + hi) / 2;
      data.push_back(v);
      data.push_back(-v);
    }
  }
  data.push_back(0.0);
  data.push_back(1.0);
  std::vector<float> out(data.begin(), data.end());
  std::sort(out.begin(), out.end());
  return out;
}

const std::vector<float>& dynamic8() {
  static const std::vector<float> table = make_dynamic8();
  return table;
}

// The index of the value nearest x in an ascending table.
template <class Table>
uint8_t nearest(const Table& table, float x) {
  const auto it = std::lower_bound(table.begin(), table.end(), x);
  if (it == table.begin()) return 0;
  if (it == table.end()) return static_cast<uint8_t>(table.size() - 1);
  const auto before = it - 1;
  return static_cast<uint8_t>((x - *before <= *it - x ? before : it) - table.begin());
}

int64_t blocks(int64_t n, int64_t b) { return (n + b - 1) / b; }

}  // namespace

const float* nf4_values() { return kNf4.data(); }
const float* dynamic8_values() { return dynamic8().data(); }

int64_t nf4_bytes(int64_t n) {
  const int64_t nb = blocks(n, kNf4Block);
  return blocks(n, 2) + nb + 4 * blocks(nb, kNf4Block2) + 4;
}

Nf4Tensor nf4_quantize(const at::Tensor& w, const at::Device& device) {
  const at::Tensor x = w.to(at::kCPU, at::kFloat).contiguous().view({-1});
  const int64_t n = x.numel(), nb = blocks(n, kNf4Block), nb2 = blocks(nb, kNf4Block2);
  const float* v = x.data_ptr<float>();
  const auto u8 = at::TensorOptions().dtype(at::kByte).device(device);
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(device);
  Nf4Tensor q;
  q.numel = n;
  q.codes = at::empty({blocks(n, 2)}, u8);
  q.qabsmax = at::empty({nb}, u8);
  q.absmax2 = at::empty({nb2}, f32);
  q.offset = at::empty({1}, f32);
  // On the CPU the results are written in place; elsewhere through host copies.
  at::Tensor codes = device.is_cpu() ? q.codes : at::empty({blocks(n, 2)}, at::kByte);
  at::Tensor qabs = device.is_cpu() ? q.qabsmax : at::empty({nb}, at::kByte);
  at::Tensor abs2 = device.is_cpu() ? q.absmax2 : at::empty({nb2}, at::kFloat);
  // First level: each block's absolute maximum and the NF4 code of every weight.
  std::vector<float> absmax(static_cast<size_t>(nb));
  uint8_t* c = codes.data_ptr<uint8_t>();
  std::fill(c, c + codes.numel(), 0);
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t begin = b * kNf4Block, end = std::min(n, begin + kNf4Block);
    float m = 0;
    for (int64_t i = begin; i < end; ++i) m = std::max(m, std::abs(v[i]));
    absmax[static_cast<size_t>(b)] = m;
    for (int64_t i = begin; i < end; ++i) {
      const uint8_t code = m > 0 ? nearest(kNf4, v[i] / m) : uint8_t{7};  // 7: the exact zero
      c[i / 2] = static_cast<uint8_t>(c[i / 2] | (i % 2 == 0 ? code : code << 4));
    }
  }
  // Double quantisation: the maxima less their mean, in blocks of 256 of the dynamic 8-bit type.
  double mean = 0;
  for (float m : absmax) mean += m;
  mean /= static_cast<double>(nb);
  const float offset = static_cast<float>(mean);
  uint8_t* qa = qabs.data_ptr<uint8_t>();
  float* a2 = abs2.data_ptr<float>();
  for (int64_t b2 = 0; b2 < nb2; ++b2) {
    const int64_t begin = b2 * kNf4Block2, end = std::min(nb, begin + kNf4Block2);
    float m = 0;
    for (int64_t i = begin; i < end; ++i) m = std::max(m, std::abs(absmax[static_cast<size_t>(i)] - offset));
    a2[b2] = m;
    for (int64_t i = begin; i < end; ++i) {
      const float centred = absmax[static_cast<size_t>(i)] - offset;
      qa[i] = m > 0 ? nearest(dynamic8(), centred / m) : nearest(dynamic8(), 0.0f);
    }
  }
  if (device.is_cpu()) {
    q.offset.fill_(offset);
  } else {
    q.codes.copy_(codes);
    q.qabsmax.copy_(qabs);
    q.absmax2.copy_(abs2);
    q.offset.fill_(offset);
  }
  return q;
}

void nf4_dequantize(const Nf4Tensor& q, at::Tensor out) {
  const int64_t n = q.numel, nb = q.qabsmax.numel();
  if (q.codes.device().is_cpu() && out.scalar_type() == at::kFloat) {
    const uint8_t* c = q.codes.data_ptr<uint8_t>();
    const uint8_t* qa = q.qabsmax.data_ptr<uint8_t>();
    const float* a2 = q.absmax2.data_ptr<float>();
    const float offset = q.offset.data_ptr<float>()[0];
    const std::vector<float>& dyn = dynamic8();
    float* o = out.data_ptr<float>();
    for (int64_t b = 0; b < nb; ++b) {
      const float scale = dyn[qa[b]] * a2[b / kNf4Block2] + offset;
      const int64_t begin = b * kNf4Block, end = std::min(n, begin + kNf4Block);
      for (int64_t i = begin; i < end; ++i) {
        const int code = i % 2 == 0 ? (c[i / 2] & 15) : (c[i / 2] >> 4);
        o[i] = kNf4[static_cast<size_t>(code)] * scale;
      }
    }
    return;
  }
  // Any device: the same arithmetic with ATen ops (temporaries of the tensor's size).
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(q.codes.device());
  const at::Tensor nf4 = at::from_blob(const_cast<float*>(kNf4.data()), {16}, at::kFloat).to(f32);
  const at::Tensor dyn = at::from_blob(const_cast<float*>(dynamic8().data()), {256}, at::kFloat).to(f32);
  const at::Tensor lo = q.codes.bitwise_and(15), hi = q.codes.bitwise_right_shift(4);
  const at::Tensor idx = at::stack({lo, hi}, 1).view({-1}).narrow(0, 0, n).to(at::kLong);
  const at::Tensor scale =
      dyn.index_select(0, q.qabsmax.to(at::kLong)) * q.absmax2.repeat_interleave(kNf4Block2).narrow(0, 0, nb) +
      q.offset;
  const at::Tensor w = nf4.index_select(0, idx) * scale.repeat_interleave(kNf4Block).narrow(0, 0, n);
  out.view({-1}).copy_(w);
}

}  // namespace paraplan::exec

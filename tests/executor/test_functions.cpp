// The hand-written backwards against LibTorch's own autograd of the textbook formulas, in float64:
// every output and every gradient must agree to rounding (1e-10 relative). A wrong sign, transpose or
// missing term in a backward shows up as an O(1) difference.
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <cmath>

#include "functions.hpp"

using namespace paraplan::exec;

namespace {

struct TestSink final : GradSink {
  std::vector<at::Tensor> grads;
  std::vector<int> arrivals;
  int64_t add(const at::Tensor& like) {
    grads.push_back(at::zeros_like(like));
    arrivals.push_back(0);
    return static_cast<int64_t>(grads.size()) - 1;
  }
  at::Tensor slot(int64_t id) override { return grads[static_cast<size_t>(id)]; }
  void arrived(int64_t id) override { ++arrivals[static_cast<size_t>(id)]; }
  void enter_unit_forward(int) override {}
  void leave_unit_backward(int) override {}
};

const auto kD = at::TensorOptions().dtype(at::kDouble);

at::Tensor leaf(std::vector<int64_t> shape, double scale = 1.0) {
  return (at::randn(shape, kD) * scale).requires_grad_(true);
}

void expect_close(const at::Tensor& a, const at::Tensor& b, const char* what) {
  ASSERT_TRUE(a.defined() && b.defined()) << what;
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  const double err = (a - b).abs().max().item<double>(), ref = b.abs().max().item<double>();
  EXPECT_LE(err, 1e-10 * std::max(1.0, ref)) << what << ": max |difference| " << err << ", max |reference| " << ref;
}

// Backpropagates sum(out * r) for a fixed random r.
void backprop(const at::Tensor& out, const at::Tensor& r) { (out * r).sum().backward(); }

at::Tensor grad_of(const at::Tensor& t) {
  at::Tensor g = t.grad().clone();
  return g;
}

class Functions : public ::testing::Test {
 protected:
  void SetUp() override { at::manual_seed(7); }
};

}  // namespace

TEST_F(Functions, ColumnLinearWithLoraMatchesAutogradOfTheFormula) {
  const int64_t T = 6, in = 5, out = 4, r = 3;
  const double scale = 16.0 / r;
  at::Tensor x = leaf({T, in}), w = leaf({out, in}), b = leaf({out}), a = leaf({r, in}), bb = leaf({out, r});
  const at::Tensor rnd = at::randn({T, out}, kD);
  // Reference: Hu et al. 2021 Eq. 3 as plain ops.
  backprop(x.mm(w.t()) + b + scale * x.mm(a.t()).mm(bb.t()), rnd);
  const at::Tensor dx = grad_of(x), dw = grad_of(w), db = grad_of(b), da = grad_of(a), dbb = grad_of(bb);
  x.mutable_grad().reset();
  TestSink sink;
  Projection p;
  p.w_slot = sink.add(w);
  p.b_slot = sink.add(b);
  p.a_slot = sink.add(a);
  p.bb_slot = sink.add(bb);
  p.scale = scale;
  p.w = w.detach().requires_grad_(true);
  p.bias = b.detach();
  p.lora_a = a.detach();
  p.lora_b = bb.detach();
  const at::Tensor y = column_linear(&sink, TpGroup{}, x, {p})[0];
  expect_close(y, x.mm(w.t()) + b + scale * x.mm(a.t()).mm(bb.t()), "forward");
  backprop(y, rnd);
  expect_close(x.grad(), dx, "dx");
  expect_close(sink.grads[0], dw, "dW");
  expect_close(sink.grads[1], db, "db");
  expect_close(sink.grads[2], da, "dA");
  expect_close(sink.grads[3], dbb, "dB");
  for (int n : sink.arrivals) EXPECT_EQ(n, 1);
}

TEST_F(Functions, LinearAccumulatesIntoTheSlotAcrossCalls) {
  // Gradient accumulation: a second backward adds to the slot rather than overwriting it.
  at::Tensor x = at::randn({4, 3}, kD).requires_grad_(true), w = leaf({2, 3});
  TestSink sink;
  Projection p;
  p.w_slot = sink.add(w);
  p.w = w.detach().requires_grad_(true);
  for (int i = 0; i < 2; ++i) column_linear(&sink, TpGroup{}, x, {p})[0].sum().backward();
  // d/dW sum(x W^T) = column sums of x per output row; twice.
  expect_close(sink.grads[0], 2 * x.detach().sum(0).expand({2, 3}), "dW after two micro-batches");
  EXPECT_EQ(sink.arrivals[0], 2);
}

TEST_F(Functions, RmsNormAndLayerNorm) {
  const int64_t T = 5, h = 8;
  const double eps = 1e-5;
  at::Tensor x = leaf({T, h}), w = leaf({h}), b = leaf({h});
  const at::Tensor rnd = at::randn({T, h}, kD);
  // RMSNorm (Zhang & Sennrich 2019, Eq. 4).
  backprop(x * (x.pow(2).mean(-1, true) + eps).rsqrt() * w, rnd);
  const at::Tensor dx = grad_of(x), dw = grad_of(w);
  x.mutable_grad().reset();
  TestSink sink;
  const int64_t ws = sink.add(w);
  backprop(norm(&sink, x, w.detach().requires_grad_(true), ws, {}, kNoSlot, eps), rnd);
  expect_close(x.grad(), dx, "RMSNorm dx");
  expect_close(sink.grads[0], dw, "RMSNorm dw");
  // LayerNorm against ATen's own layer_norm.
  x.mutable_grad().reset();
  w.mutable_grad().reset();
  backprop(at::layer_norm(x, {h}, w, b, eps), rnd);
  const at::Tensor lx = grad_of(x), lw = grad_of(w), lb = grad_of(b);
  x.mutable_grad().reset();
  TestSink s2;
  const int64_t lws = s2.add(w), lbs = s2.add(b);
  const at::Tensor y = norm(&s2, x, w.detach().requires_grad_(true), lws, b.detach().requires_grad_(true), lbs, eps);
  expect_close(y, at::layer_norm(x, {h}, w, b, eps), "LayerNorm forward");
  backprop(y, rnd);
  expect_close(x.grad(), lx, "LayerNorm dx");
  expect_close(s2.grads[0], lw, "LayerNorm dw");
  expect_close(s2.grads[1], lb, "LayerNorm db");
}

TEST_F(Functions, RopeMatchesRotateHalf) {
  const int64_t b = 2, s = 5, heads = 3, hd = 4;
  at::Tensor x = leaf({b * s, heads * hd});
  const at::Tensor angle = at::rand({s, hd / 2}, kD) * 3;
  const at::Tensor cos = angle.cos(), sin = angle.sin();
  // HF LLaMA apply_rotary_pos_emb: x * cat(cos, cos) + rotate_half(x) * cat(sin, sin).
  const at::Tensor xv = x.view({b, s, heads, hd});
  const at::Tensor rot = at::cat({-xv.narrow(3, hd / 2, hd / 2), xv.narrow(3, 0, hd / 2)}, 3);
  const at::Tensor cf = at::cat({cos, cos}, 1).view({1, s, 1, hd}), sf = at::cat({sin, sin}, 1).view({1, s, 1, hd});
  const at::Tensor ref = (xv * cf + rot * sf).reshape({b * s, heads * hd});
  const at::Tensor rnd = at::randn({b * s, heads * hd}, kD);
  backprop(ref, rnd);
  const at::Tensor dx = grad_of(x);
  x.mutable_grad().reset();
  const at::Tensor y = rope(x, cos, sin, heads, hd, s);
  expect_close(y, ref, "forward");
  backprop(y, rnd);
  expect_close(x.grad(), dx, "dx");
}

namespace {

// Grouped-query causal attention as eager PyTorch writes it: repeat K and V per group, softmax of
// masked scaled scores, times V.
at::Tensor reference_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t b, int64_t s,
                               int64_t h, int64_t kv, int64_t hd) {
  const at::Tensor qh = q.view({b, s, h, hd}).transpose(1, 2);
  const at::Tensor kh = k.view({b, s, kv, hd}).transpose(1, 2).repeat_interleave(h / kv, 1);
  const at::Tensor vh = v.view({b, s, kv, hd}).transpose(1, 2).repeat_interleave(h / kv, 1);
  const at::Tensor mask = at::ones({s, s}, at::kBool).triu(1);
  const at::Tensor sc = qh.matmul(kh.transpose(-1, -2)).div(std::sqrt(static_cast<double>(hd))).masked_fill(mask, -INFINITY);
  return sc.softmax(-1).matmul(vh).transpose(1, 2).reshape({b * s, h * hd});
}

}  // namespace

TEST_F(Functions, AttentionFlashAndEagerMatchTheReference) {
  const int64_t b = 2, s = 5, h = 4, kv = 2, hd = 3;
  for (bool flash : {true, false}) {
    at::Tensor q = leaf({b * s, h * hd}), k = leaf({b * s, kv * hd}), v = leaf({b * s, kv * hd});
    const at::Tensor rnd = at::randn({b * s, h * hd}, kD);
    const at::Tensor ref = reference_attention(q, k, v, b, s, h, kv, hd);
    backprop(ref, rnd);
    const at::Tensor dq = grad_of(q), dk = grad_of(k), dv = grad_of(v);
    for (auto* t : {&q, &k, &v}) t->mutable_grad().reset();
    const at::Tensor mask = at::ones({s, s}, at::kBool).triu(1);
    const at::Tensor y = attention(q, k, v, mask, b, s, h, kv, hd, flash);
    expect_close(y, ref, flash ? "flash forward" : "eager forward");
    backprop(y, rnd);
    expect_close(q.grad(), dq, "dq");
    expect_close(k.grad(), dk, "dk");
    expect_close(v.grad(), dv, "dv");
  }
}

TEST_F(Functions, SwigluGeluAndCrossEntropy) {
  at::Tensor g = leaf({6, 5}), u = leaf({6, 5});
  const at::Tensor rnd = at::randn({6, 5}, kD);
  backprop(at::silu(g) * u, rnd);  // Shazeer 2020, Eq. 5 (Swish_1 = SiLU)
  const at::Tensor dg = grad_of(g), du = grad_of(u);
  g.mutable_grad().reset();
  u.mutable_grad().reset();
  backprop(swiglu(g, u), rnd);
  expect_close(g.grad(), dg, "swiglu d gate");
  expect_close(u.grad(), du, "swiglu d up");

  g.mutable_grad().reset();
  backprop(at::gelu(g, "tanh"), rnd);
  const at::Tensor dgelu = grad_of(g);
  g.mutable_grad().reset();
  backprop(paraplan::exec::gelu(g), rnd);
  expect_close(g.grad(), dgelu, "gelu dx");

  at::Tensor logits = leaf({7, 11}, 3.0);
  const at::Tensor targets = at::randint(0, 11, {7}, at::kLong);
  const double scale = 1.0 / 13;
  const at::Tensor ref = at::cross_entropy_loss(logits, targets, {}, at::Reduction::Sum) * scale;
  ref.backward();
  const at::Tensor dl = grad_of(logits);
  logits.mutable_grad().reset();
  const at::Tensor loss = paraplan::exec::cross_entropy(logits, targets, scale);
  expect_close(loss, ref, "cross-entropy value");
  loss.backward();
  expect_close(logits.grad(), dl, "cross-entropy d logits");
}

TEST_F(Functions, EmbeddingWithLearnedPositions) {
  const int64_t V = 9, h = 4, b = 2, s = 3;
  at::Tensor w = leaf({V, h}), p = leaf({5, h});
  const at::Tensor ids = at::randint(0, V, {b * s}, at::kLong);
  const at::Tensor rnd = at::randn({b * s, h}, kD);
  backprop(w.index_select(0, ids) + p.narrow(0, 0, s).repeat({b, 1}), rnd);
  const at::Tensor dw = grad_of(w), dp = grad_of(p);
  TestSink sink;
  const int64_t ws = sink.add(w), ps = sink.add(p);
  EmbeddingArgs a;
  a.w = w.detach().requires_grad_(true);
  a.w_slot = ws;
  a.pos = p.detach().requires_grad_(true);
  a.pos_slot = ps;
  a.seq_len = s;
  backprop(embedding(&sink, TpGroup{}, ids, a), rnd);
  expect_close(sink.grads[0], dw, "d embedding");
  expect_close(sink.grads[1], dp, "d positions");
}

TEST_F(Functions, DropoutMasksAreAPureFunctionOfTheGlobalCoordinates) {
  // Sequence parallelism gives rank r rows [r T/tp, (r+1) T/tp) of the micro-batch's tokens: its mask must
  // be those rows of the whole mask, so that any layout draws the reference's masks.
  DropoutKey k;
  k.p = 0.5;
  k.seed = 3;
  k.step = 2;
  k.site = 7;
  k.sequences = {10, 11};
  k.seq_len = 16;
  const at::Tensor whole = dropout_mask(k, 0, 32, 64);
  EXPECT_TRUE(at::equal(dropout_mask(k, 16, 16, 64), whole.narrow(0, 16, 16)));
  EXPECT_TRUE(at::equal(dropout_mask(k, 0, 32, 64), whole));  // the same again
  // Another step, site or sequence draws another mask.
  DropoutKey other = k;
  other.step = 3;
  EXPECT_FALSE(at::equal(dropout_mask(other, 0, 32, 64), whole));
  other = k;
  other.sequences = {11, 12};
  EXPECT_TRUE(at::equal(dropout_mask(other, 0, 16, 64), whole.narrow(0, 16, 16)));  // sequence 11 again
  // 2,048 draws at p = 0.5: the dropped fraction within 5 standard deviations (sqrt(2048/4) / 2048 = 1.1%).
  const double dropped = whole.to(at::kDouble).mean().item<double>();
  EXPECT_NEAR(dropped, 0.5, 5 * 0.011);
  // Dropout scales what it keeps by 1 / (1 - p): the expectation is the input's.
  const at::Tensor x = at::ones({32, 64}, kD);
  const at::Tensor y = dropout(x, k, 0);
  EXPECT_TRUE(at::equal(y, at::where(whole, at::zeros_like(x), at::full_like(x, 2.0))));
}

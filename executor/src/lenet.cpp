#include "lenet.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

namespace paraplan::exec {

namespace {

// (shape, fan_in) of each parameter, in forward order.
struct Shape {
  std::vector<int64_t> dims;
  int64_t fan_in;
};
const std::vector<Shape>& lenet_shapes() {
  static const std::vector<Shape> s = {
      {{6, 1, 5, 5}, 25},   {{6}, 25},          // conv1
      {{16, 6, 5, 5}, 150}, {{16}, 150},        // conv2
      {{120, 400}, 400},    {{120}, 400},       // fc1
      {{84, 120}, 120},     {{84}, 120},        // fc2
      {{10, 84}, 84},       {{10}, 84},         // fc3
  };
  return s;
}

}  // namespace

LeNet5::LeNet5(uint64_t seed) {
  int64_t n = 0;
  for (const Shape& s : lenet_shapes()) {
    int64_t k = 1;
    for (int64_t d : s.dims) k *= d;
    n += k;
    shapes_.push_back(s.dims);
  }
  flat_ = at::empty({n}, at::kFloat);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  int64_t off = 0;
  for (const Shape& s : lenet_shapes()) {
    int64_t k = 1;
    for (int64_t d : s.dims) k *= d;
    // torch.nn.Conv2d / Linear reset_parameters: kaiming_uniform_(a = sqrt(5)) for the weight and
    // U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias; both bounds are 1/sqrt(fan_in).
    const double bound = 1.0 / std::sqrt(static_cast<double>(s.fan_in));
    flat_.narrow(0, off, k).uniform_(-bound, bound, gen);
    off += k;
  }
}

at::Tensor LeNet5::forward(const at::Tensor& x, bool grad) {
  std::vector<at::Tensor> p;
  int64_t off = 0;
  leaves_.clear();
  for (const auto& shape : shapes_) {
    int64_t k = 1;
    for (int64_t d : shape) k *= d;
    at::Tensor t = flat_.narrow(0, off, k).view(shape);
    if (grad) {
      t = t.detach().requires_grad_(true);
      leaves_.push_back(t);
    }
    p.push_back(t);
    off += k;
  }
  at::Tensor h = at::max_pool2d(at::relu(at::conv2d(x, p[0], p[1], {1, 1}, {2, 2})), {2, 2});  // [b, 6, 14, 14]
  h = at::max_pool2d(at::relu(at::conv2d(h, p[2], p[3])), {2, 2});                            // [b, 16, 5, 5]
  h = h.flatten(1);                                                                            // [b, 400]
  h = at::relu(at::linear(h, p[4], p[5]));
  h = at::relu(at::linear(h, p[6], p[7]));
  return at::linear(h, p[8], p[9]);
}

at::Tensor LeNet5::grads() const {
  std::vector<at::Tensor> g;
  for (const at::Tensor& l : leaves_) g.push_back(l.grad().reshape({-1}));
  return at::cat(g);
}

FlatAdam::FlatAdam(int64_t n, double lr, double beta1, double beta2, double eps)
    : m_(at::zeros({n}, at::kFloat)), v_(at::zeros({n}, at::kFloat)), lr_(lr), b1_(beta1), b2_(beta2), eps_(eps) {}

void FlatAdam::step(at::Tensor& params, const at::Tensor& grad) {
  at::NoGradGuard no_grad;
  ++t_;
  // Kingma & Ba 2015, Algorithm 1: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
  // p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)  (torch.optim.Adam's form).
  m_.mul_(b1_).add_(grad, 1 - b1_);
  v_.mul_(b2_).addcmul_(grad, grad, 1 - b2_);
  const double bc1 = 1 - std::pow(b1_, t_), bc2 = 1 - std::pow(b2_, t_);
  const at::Tensor denom = (v_ / bc2).sqrt_().add_(eps_);
  params.addcdiv_(m_, denom, -lr_ / bc1);
}

double ddp_step(LeNet5& model, FlatAdam& opt, Communicator& comm, const at::Tensor& images, const at::Tensor& labels,
                int64_t global_batch) {
  const at::Tensor logits = model.forward(images, true);
  const at::Tensor loss_sum = at::nll_loss(at::log_softmax(logits, 1), labels, {}, at::Reduction::Sum);
  loss_sum.div(static_cast<double>(global_batch)).backward();
  // One bucket: the gradient and, in its last element, this rank's loss sum.
  at::Tensor buf = at::empty({model.numel() + 1}, at::kFloat);
  buf.narrow(0, 0, model.numel()).copy_(model.grads());
  buf[model.numel()] = loss_sum.item<float>();
  comm.allreduce(buf);
  opt.step(model.flat(), buf.narrow(0, 0, model.numel()));
  return static_cast<double>(buf[model.numel()].item<float>()) / static_cast<double>(global_batch);
}

std::pair<int64_t, double> evaluate(LeNet5& model, const at::Tensor& images, const at::Tensor& labels) {
  at::NoGradGuard no_grad;
  int64_t correct = 0;
  double loss = 0;
  const int64_t n = images.size(0), chunk = 1000;
  for (int64_t i = 0; i < n; i += chunk) {
    const int64_t k = std::min(chunk, n - i);
    const at::Tensor logits = model.forward(images.narrow(0, i, k), false);
    const at::Tensor y = labels.narrow(0, i, k);
    correct += logits.argmax(1).eq(y).sum().item<int64_t>();
    loss += at::nll_loss(at::log_softmax(logits, 1), y, {}, at::Reduction::Sum).item<double>();
  }
  return {correct, loss};
}

}  // namespace paraplan::exec

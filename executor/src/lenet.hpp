#pragma once
// LeNet-5 for the textbook chapter's first exercise (chapter 10, exercise 1: DDP LeNet-5), trained
// DDP-style: every rank holds the whole model, computes the gradient of its slice of the global batch,
// and one all-reduce (sum) of the flat gradient makes every rank's gradient the global batch's — the
// "decentralised all-reduce" of section 10.3.1 — before each rank takes the same Adam step.
// Internal header: includes ATen.
#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "paraplan/exec/communicator.hpp"

namespace paraplan::exec {

// LeCun et al. 1998 ("Gradient-based learning applied to document recognition", Fig. 2), with the
// modern ReLU and max-pooling: conv 6@5x5 (padding 2 on 28x28 inputs) -> pool 2 -> conv 16@5x5 ->
// pool 2 -> 400 -> 120 -> 84 -> 10.
class LeNet5 {
 public:
  explicit LeNet5(uint64_t seed);  // PyTorch's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
  int64_t numel() const { return flat_.numel(); }  // 61,706 parameters
  at::Tensor& flat() { return flat_; }             // all parameters, one fp32 vector
  // Logits [b, 10] of images [b, 1, 28, 28]; with `grad`, the parameters are fresh leaves whose
  // gradients grads() collects after backward.
  at::Tensor forward(const at::Tensor& images, bool grad);
  at::Tensor grads() const;  // flat gradient of the last forward(grad = true), after backward

 private:
  at::Tensor flat_;
  std::vector<std::vector<int64_t>> shapes_;
  std::vector<at::Tensor> leaves_;
};

// Adam (Kingma & Ba 2015, Algorithm 1) on the flat parameter vector, as torch.optim.Adam.
class FlatAdam {
 public:
  FlatAdam(int64_t n, double lr, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8);
  void step(at::Tensor& params, const at::Tensor& grad);

 private:
  at::Tensor m_, v_;
  double lr_, b1_, b2_, eps_;
  int t_ = 0;
};

// One DDP training step on this rank's images and labels (its slice of the global batch):
// loss = sum of cross-entropies / global_batch; the flat gradient and the loss sum travel in one
// all-reduce over `comm`. Returns the global batch's mean loss (the same on every rank).
double ddp_step(LeNet5& model, FlatAdam& opt, Communicator& comm, const at::Tensor& images, const at::Tensor& labels,
                int64_t global_batch);

// Correct predictions and summed cross-entropy of images (no gradient).
std::pair<int64_t, double> evaluate(LeNet5& model, const at::Tensor& images, const at::Tensor& labels);

}  // namespace paraplan::exec

#pragma once
// The decoder's operations as autograd Functions with hand-written backwards. Owning the backward
// fixes exactly what each op keeps for it (what the planner's op list for the "paraplan" framework
// profile assumes) and lets weight gradients accumulate straight into the data-parallel engine's
// buffers (at::addmm_out with beta = 1, no temporary), the way Megatron's gradient-accumulation fusion
// does. Internal header: includes ATen.
#include <ATen/ATen.h>

#include <cstdint>

namespace paraplan::exec {

// Where weight gradients go. slot() returns the tensor to accumulate into (shaped like the parameter);
// arrived() says one accumulation of that parameter for this micro-batch is done.
class GradSink {
 public:
  virtual ~GradSink() = default;
  virtual at::Tensor slot(int64_t id) = 0;
  virtual void arrived(int64_t id) = 0;
  // Unit boundaries (the engine gathers ZeRO-3 parameters and finishes gradient buckets there).
  virtual void enter_unit_forward(int unit) = 0;   // before unit `unit` runs forward
  virtual void leave_unit_backward(int unit) = 0;  // after unit `unit`'s backward, before unit-1's
};

constexpr int64_t kNoSlot = -1;  // a frozen parameter (or none)

// y = x W^T (+ b) (+ scale (x A^T) B^T): a linear layer with an optional LoRA adapter (Hu et al. 2021,
// Eq. 3: h = W0 x + B A x, scaled by alpha / r). x: [T, in]. Keeps x and, with LoRA, x A^T [T, r].
struct LinearArgs {
  int64_t w = kNoSlot, b = kNoSlot, a = kNoSlot, bb = kNoSlot;  // gradient slots of W, bias, A, B
  double scale = 1.0;
};
at::Tensor linear(GradSink* sink, const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias,
                  const at::Tensor& lora_a, const at::Tensor& lora_b, const LinearArgs& args);

// Token (and learned position) embedding: ids [b*s] -> [b*s, h]. Keeps the ids.
at::Tensor embedding(GradSink* sink, const at::Tensor& ids, const at::Tensor& w, int64_t w_slot,
                     const at::Tensor& pos, int64_t pos_slot, int64_t seq_len);

// RMSNorm (Zhang & Sennrich 2019): x * rsqrt(mean(x^2) + eps) * w. LayerNorm (Ba et al. 2016) when
// bias is defined: (x - mean) * rsqrt(var + eps) * w + b. Keeps x and fp32 [T] statistics (rstd; and the
// mean for LayerNorm).
at::Tensor norm(GradSink* sink, const at::Tensor& x, const at::Tensor& w, int64_t w_slot, const at::Tensor& bias,
                int64_t b_slot, double eps);

// Rotary position embedding (Su et al. 2021, RoFormer Eq. 34; the rotate-half layout of HF LLaMA):
// x [b*s, heads*hd]; cos, sin [s, hd/2]. Keeps nothing (the tables belong to the micro-batch).
at::Tensor rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, int64_t heads, int64_t head_dim,
                int64_t seq_len);

// Causal self-attention with grouped-query heads (Ainslie et al. 2023): q [b*s, H*hd], k, v [b*s, KV*hd]
// -> [b*s, H*hd]. flash: keeps q, k, v and the fp32 log-sum-exp, and recomputes the probabilities in
// the backward (FlashAttention-2, Dao 2023, Alg. 2, without tiling); otherwise also keeps the
// probabilities [b, H, s, s] as eager attention does. mask [s, s] is true above the diagonal.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                     int64_t batch, int64_t seq_len, int64_t heads, int64_t kv_heads, int64_t head_dim, bool flash);

// SwiGLU (Shazeer 2020): silu(gate) * up. Keeps gate and up.
at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up);
// GeLU, tanh form (Hendrycks & Gimpel 2016; GPT-2's gelu_new). Keeps its input.
at::Tensor gelu(const at::Tensor& x);

// Sum over tokens of -log softmax(logits)[target], times scale (1 / tokens of the global batch, so that
// gradients summed over micro-batches and ranks are the global mean's). Keeps the logits, the fp32
// log-sum-exp [T] and the targets.
at::Tensor cross_entropy(const at::Tensor& logits, const at::Tensor& targets, double scale);

// Identity that marks the start of unit `unit`: forward calls sink->enter_unit_forward(unit), backward
// calls sink->leave_unit_backward(unit) before passing the gradient on.
at::Tensor unit_boundary(GradSink* sink, const at::Tensor& x, int unit);

}  // namespace paraplan::exec

#pragma once
// The decoder's operations as autograd Functions with hand-written backwards. Owning the backward
// fixes exactly what each op keeps for it (what the planner's op list for the "paraplan" framework
// profile assumes) and lets weight gradients accumulate straight into the data-parallel engine's
// buffers (at::addmm_out with beta = 1, no temporary), the way Megatron's gradient-accumulation fusion
// does. Tensor parallelism (Megatron, Shoeybi et al. 2019 §3) lives in the linears, the embedding and
// the loss: their collectives run inside these Functions. Internal header: includes ATen.
#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "paraplan/exec/op_timer.hpp"

namespace paraplan::exec {

class Communicator;

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
  // Weight gradients: computed at once, or, while a queue is set (the B pass of a zero-bubble schedule,
  // Qi et al. 2023 §2), kept with the tensors they need for the W pass, where their time is counted in
  // `op_class` (op_classes.hpp) as it is inside the backward that made them.
  void weight_grad(const char* op_class, std::function<void()> fn) {
    if (deferred_)
      deferred_->push_back([op_class, fn = std::move(fn)] {
        const OpScope scope(op_class);
        fn();
      });
    else
      fn();
  }
  void set_deferred(std::vector<std::function<void()>>* queue) { deferred_ = queue; }
  bool deferring() const { return deferred_ != nullptr; }

 private:
  std::vector<std::function<void()>>* deferred_ = nullptr;
};

constexpr int64_t kNoSlot = -1;  // a frozen parameter (or none)

// The tensor-parallel group of this rank; size 1 (or no communicator): no tensor parallelism. With
// sequence parallelism (Korthikanti et al. 2022 §4.2.2) the activations between TP regions are split by
// tokens: rank r holds rows [r T/tp, (r+1) T/tp) of [T, h].
struct TpGroup {
  Communicator* comm = nullptr;
  int size = 1, rank = 0;
  bool sp = false;
  bool active() const { return size > 1; }
  bool sequence_parallel() const { return sp && size > 1; }
};

// One projection of a column-parallel group: y = x W^T (+ b) (+ scale (x A^T) B^T), LoRA as Hu et al.
// 2021, Eq. 3 (h = W0 x + B A x, scaled by alpha / r). Undefined tensors are absent.
struct Projection {
  at::Tensor w, bias, lora_a, lora_b;
  int64_t w_slot = kNoSlot, b_slot = kNoSlot, a_slot = kNoSlot, bb_slot = kNoSlot;  // gradient slots
  double scale = 1.0;
};

// Column-parallel linears sharing one input (q, k, v; gate, up; the output head): each rank computes
// its output columns of every projection. Entering the TP region is Megatron's f: identity forward and
// all-reduce of the input gradient backward; under sequence parallelism all-gather of the token slices
// forward and reduce-scatter backward. Keeps x (the token slice under SP, gathered again in the
// backward for the weight gradients) and x A^T [T, r] per adapter.
std::vector<at::Tensor> column_linear(GradSink* sink, const TpGroup& tp, const at::Tensor& x,
                                      const std::vector<Projection>& parts);

// Row-parallel linear: x [T, in / tp] times this rank's input columns, then Megatron's g: all-reduce
// forward (reduce-scatter to token slices under SP), identity backward (all-gather under SP). The bias
// and a LoRA update are added after the reduction. Keeps x and, with an adapter, the reduced x A^T.
at::Tensor row_linear(GradSink* sink, const TpGroup& tp, const at::Tensor& x, const Projection& p);

// Token (and learned position) embedding: ids [b*s] -> [b*s, h] ([b*s / tp, h] under SP). The table
// holds vocabulary rows [vocab_start, vocab_start + rows) of this rank (Megatron VocabParallelEmbedding:
// rows outside give zeros, the partial results are summed over tp). Positions are added after the sum.
// Keeps the ids.
struct EmbeddingArgs {
  at::Tensor w, pos;
  int64_t w_slot = kNoSlot, pos_slot = kNoSlot;
  int64_t seq_len = 0, vocab_start = 0;
};
at::Tensor embedding(GradSink* sink, const TpGroup& tp, const at::Tensor& ids, const EmbeddingArgs& a);

// RMSNorm (Zhang & Sennrich 2019): x * rsqrt(mean(x^2) + eps) * w. LayerNorm (Ba et al. 2016) when
// bias is defined: (x - mean) * rsqrt(var + eps) * w + b. Keeps x and fp32 [T] statistics (rstd; and the
// mean for LayerNorm).
at::Tensor norm(GradSink* sink, const at::Tensor& x, const at::Tensor& w, int64_t w_slot, const at::Tensor& bias,
                int64_t b_slot, double eps);

// Rotary position embedding (Su et al. 2021, RoFormer Eq. 34; the rotate-half layout of HF LLaMA):
// x [b*s, heads*hd]; cos, sin [s, hd/2]. Keeps nothing (the tables belong to the micro-batch).
at::Tensor rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, int64_t heads, int64_t head_dim,
                int64_t seq_len);

// Which elements dropout zeroes: a pure function of (seed, step, global sequence, site, position), so
// every rank, every parallel layout and a recomputation draw the same mask for the same element.
struct DropoutKey {
  double p = 0;                      // drop probability; 0: no dropout
  uint64_t seed = 0;
  int64_t step = 0;
  std::vector<int64_t> sequences;    // global index of each sequence of the micro-batch
  int64_t seq_len = 0;
  int64_t site = 0;                  // which dropout (layer and place)
  bool active() const { return p > 0; }
};

// Causal self-attention with grouped-query heads (Ainslie et al. 2023): q [b*s, H*hd], k, v [b*s, KV*hd]
// -> [b*s, H*hd]. flash: keeps q, k, v and the fp32 log-sum-exp, and recomputes the probabilities in
// the backward (FlashAttention-2, Dao 2023, Alg. 2, without tiling); otherwise also keeps the
// probabilities [b, H, s, s] as eager attention does. recompute (selective recompute, Korthikanti et
// al. 2022 §4.2.3): keeps only q, k, v and re-runs the whole core in the backward. mask [s, s] is true
// above the diagonal. Attention dropout on the probabilities: the eager path keeps its mask, the others
// draw it again. first_head: the global index of the first local head (the dropout mask's coordinates).
struct AttentionArgs {
  int64_t batch = 0, seq_len = 0, heads = 0, kv_heads = 0, head_dim = 0, first_head = 0;
  bool flash = true, recompute = false;
  DropoutKey dropout;
};
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                     const AttentionArgs& a);
// The same without dropout or recompute (unit tests).
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                     int64_t batch, int64_t seq_len, int64_t heads, int64_t kv_heads, int64_t head_dim, bool flash);

// Hidden dropout (Srivastava et al. 2014) on x [rows, width], rows first_row.. of the micro-batch's
// tokens: zeroes with probability p, scales the rest by 1 / (1 - p). Keeps its 1-byte mask.
at::Tensor dropout(const at::Tensor& x, const DropoutKey& key, int64_t first_row);
// The mask itself ([rows, width] of bool, true where dropped), for tests and the reference.
at::Tensor dropout_mask(const DropoutKey& key, int64_t first_row, int64_t rows, int64_t width);

// SwiGLU (Shazeer 2020): silu(gate) * up. Keeps gate and up.
at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up);
// GeLU, tanh form (Hendrycks & Gimpel 2016; GPT-2's gelu_new). Keeps its input.
at::Tensor gelu(const at::Tensor& x);

// Sum over tokens of -log softmax(logits)[target], times scale (1 / tokens of the global batch, so that
// gradients summed over micro-batches and ranks are the global mean's). logits [T, V / tp] are this
// rank's vocabulary columns [vocab_start, vocab_start + width), of which the first `valid` are real
// (the rest pad the vocabulary to a multiple of tp and take no part). Megatron's vocabulary-parallel
// cross-entropy: the log-sum-exp and the target's logit are combined over tp; no rank holds the whole
// vocabulary's logits. Keeps the logits, the fp32 log-sum-exp [T] and the targets.
at::Tensor cross_entropy(const TpGroup& tp, const at::Tensor& logits, const at::Tensor& targets, double scale,
                         int64_t vocab_start, int64_t valid);
at::Tensor cross_entropy(const at::Tensor& logits, const at::Tensor& targets, double scale);

// Identity that marks the start of unit `unit`: forward calls sink->enter_unit_forward(unit), backward
// calls sink->leave_unit_backward(unit) before passing the gradient on.
at::Tensor unit_boundary(GradSink* sink, const at::Tensor& x, int unit);

// Full recompute (Chen et al. 2016; Korthikanti et al. 2022 §2): runs fn(x) without keeping anything
// but x, and in the backward runs it again with gradients and back-propagates through it. params: the
// trainable tensors fn uses.
at::Tensor recompute(const std::function<at::Tensor(const at::Tensor&)>& fn, const at::Tensor& x,
                     const std::vector<at::Tensor>& params);

}  // namespace paraplan::exec

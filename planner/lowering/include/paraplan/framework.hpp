#pragma once
// FrameworkProfile: how a training framework lays memory out beyond the textbook formulas —
// gradient copies, communication buffers, fused kernels, and per-process overheads. Each number
// carries its source in framework.cpp.
#include "paraplan/training.hpp"

namespace paraplan::planner {

// Where gradients live, by ZeRO stage.
enum class GradLayout {
  single,             // one gradient buffer in grad_dtype, sharded from ZeRO-2 (ZeRO paper, Megatron, FSDP)
  deepspeed,          // fp16/bf16 grads + fp32 partition; ZeRO-2 shards both (DeepSpeed >= PR #5099)
  deepspeed_legacy,   // fp16/bf16 grads unsharded + fp32 partition (DeepSpeed estimator before PR #5099)
};

// Per-process overheads outside the model (configurable per plan: cluster.overheads).
struct Overheads {
  double cuda_context_bytes = 0;          // CUDA context, cuBLAS/cuDNN handles and kernel images
  double nccl_bytes_per_communicator = 0; // NCCL buffers and state per communicator a rank joins
  double allocator_headroom = 0;          // fraction of allocated peak reserved but unusable (fragmentation)
};

// Kernels the framework launches for one op of the workload (one micro-batch), forward and backward.
struct Launches {
  double fwd = 0, bwd = 0;
};
// The kernel-level view of a framework (op_time.cpp): how many kernels each kind of op launches — each
// costs its device time plus the fixed per-kernel cost on the device, and the host's issue time — and
// how the host issues them.
struct LaunchProfile {
  Launches linear;          // a linear layer: GEMM (+ bias), backward data and weight GEMMs (+ bias grad, grad accumulation)
  Launches norm;            // LayerNorm / RMSNorm
  Launches attention_core;  // unfused attention: batched GEMMs for QK^T and AV and the layout copies around them
  Launches flash;           // fused (flash) attention
  Launches softmax;         // unfused: scale-mask-softmax and attention dropout
  Launches activation;      // GeLU / SwiGLU (with its bias where fused)
  Launches residual;        // residual add with the hidden dropout (and bias) before it
  Launches rope;
  Launches embedding;       // token (and position) lookup, dropout
  Launches loss;            // output softmax cross-entropy (vocabulary-parallel under TP)
  Launches moe_router;      // a MoE layer's router after its logits GEMM: softmax/top-k, aux loss
  Launches moe_permute;     // one token permutation pass (permute, chunk sort, their inverses)
  Launches per_layer;       // glue each transformer layer adds (views made contiguous, RNG state, hooks)
  // Unfused attention's fused scale-mask-softmax kernel runs only when (micro-batch x local heads) is a
  // multiple of this (0: always); otherwise the eager path scales, masks and softmaxes in fp32.
  int softmax_fused_batch_multiple = 0;
  Launches softmax_eager{};    // the eager path's kernels (with the dropout)
  double softmax_eager_traffic = 1;  // its score traffic relative to the fused kernel's
  double bwd_host_factor = 1;  // host cost of a backward kernel (autograd's C++ engine) / a forward one
  // Passes over the main gradient per weight-gradient element and micro-batch when the weight gradient
  // is added into the main-grad buffer by a separate kernel (read grad, read main grad, write main grad:
  // 3); 0 when the weight-gradient GEMM accumulates into it (gradient_accumulation_fusion).
  double grad_accumulation_passes = 0;
};

struct FrameworkProfile {
  Framework id = Framework::megatron;
  const char* name = "";
  GradLayout grad_layout = GradLayout::single;
  Overheads overheads;             // on GPUs; a CPU worker has none of them
  double dp_bucket_bytes = 0;      // extra gradient-reduction buckets when zero <= 2 (0: grads are the buffer)
  double zero3_prefetch_layers = 1;   // unsharded layers gathered ahead of use, besides the one in use (ZeRO-3)
  bool zero3_unsharded_grads = true;  // one layer's unsharded gradients before reduce-scatter (ZeRO-3)
  int vocab_pad_multiple = 1;      // vocabulary padded to a multiple of this times tp
  bool fused_swiglu = true;        // SwiGLU saves only its input (gate|up), not gate, up and silu separately
  double logits_saved_bytes = 4;   // bytes per logit element kept for the loss backward (fp32 softmax)
  double logits_spike_bytes = 2;   // extra bytes per logit element alive at the loss (the bf16 logits / grad)
  // paraplan's own executor: every op's saved and backward bytes are those of its kernels, the activation
  // peak is taken phase by phase through the backward, and the ZeRO-2/3 buffers are its reusable ones
  // (planner/lowering/src/executor_ops.cpp).
  bool exact_executor = false;
  // Data parallelism with ZeRO <= 2 as paraplan's executor runs it (executor/src/zero_engine.cpp): one
  // collective per unit (each layer, the embedding, the head) that has trainable parameters, not size
  // buckets; ZeRO-1 reduces by all-reduce (every rank keeps the whole gradient, steps its shard); ZeRO-2
  // reduce-scatters each unit after every micro-batch's backward, in it; ZeRO-1/2 then gather the
  // updated parameters unit by unit; and every step all-reduces the loss over DP and PP (trainer.cpp). With
  // ZeRO-3 it gathers a unit's trainable and frozen parameters (LoRA's adapters and base) apart.
  bool dp_per_unit = false;
  int step_loss_all_reduces = 0;
  // The optimizer step first takes the gradients' global norm to clip them (Megatron-LM --clip-grad 1.0,
  // torchtitan max_norm 1.0, DeepSpeed gradient_clipping): one more read of every gradient.
  bool clips_grad_norm = true;
  // Transformer Engine's FP8 linear layers (training.precision fp8; transformer_engine/pytorch/module/
  // linear.py and grouped_linear.py, TE 2.x): the input a GEMM keeps for its weight gradient is its FP8
  // copy, 1 B an element (the row-wise data is dropped after the forward GEMM: update_usage(rowwise_usage=
  // False)), and the FP8 copies of the weights, row-wise and column-wise (2 B a parameter), are cached
  // from a step's first micro-batch to its last (is_first_microbatch, which Megatron-Core's TE wrappers pass).
  bool te_fp8 = false;
  // Megatron-Core >= 0.13 multiplies the router probabilities into the expert activation
  // (moe/experts.py weighted_bias_swiglu_impl) instead of into the unpermute (core_v0.12 token_dispatcher.py
  // unpermute(..., probs=...)): the combine keeps nothing for its backward, the activation keeps the fp32
  // probability of each routed copy.
  bool moe_probs_in_activation = false;
  // Pipeline transfers of the interleaved schedule overlapped with compute in the steady state, blocking
  // in the warm-up and the cool-down: Megatron-Core's overlap_p2p_comm (Megatron-LM arguments.py
  // --no-overlap-p2p-communication, on by default with virtual stages; Megatron-Bridge comm_overlap.py
  // sets it whenever vp > 1; --overlap-p2p-communication-warmup-flush, off by default, would overlap those
  // too). Megatron-LM of 2021 (v2.6 schedules.py send_forward_recv_forward) blocks on every transfer.
  bool interleaved_p2p_overlap = false;
  LaunchProfile launches;
};

const FrameworkProfile& framework_profile(Framework f);

struct Plan;
// Gradient-reduction bucket size in parameters (ZeRO <= 2), by framework: the unit the data-parallel
// reduction overlaps the backward with; the last bucket can only start when the backward ends.
double dp_bucket_params(const Plan& plan, const FrameworkProfile& fw);

}  // namespace paraplan::planner

#include "paraplan/framework.hpp"

#include <algorithm>

#include "paraplan/bytes_per_param.hpp"
#include "paraplan/plan.hpp"

namespace paraplan::planner {

namespace {

// Defaults shared by the GPU frameworks; each is overridable per plan (cluster.overheads).
// - CUDA context: ~300 MB with lazy loading (CUDA >= 11.7), > 1 GB before (pytorch/pytorch #107667,
//   #20532); plus cuBLAS workspaces. We take 512 MiB.
// - NCCL: 544 MB per 2-GPU communicator, 688 MB for larger groups on A100 (NVIDIA/nccl #964); we take 688 MB.
// - Allocator headroom: 1.83 GiB of 78 GiB reserved-but-unallocated on a 70B job, and a 5 % reserve
//   (vllm-project/compressed-tensors PR #587); we take 5 %.
constexpr Overheads kGpuOverheads{512.0 * (1 << 20), 688e6, 0.05};

FrameworkProfile megatron() {
  FrameworkProfile f;
  f.id = Framework::megatron;
  f.name = "Megatron-LM";
  f.grad_layout = GradLayout::single;  // main_grad buffer in grad_dtype (param_and_grad_buffer.py)
  f.overheads = kGpuOverheads;
  f.dp_bucket_bytes = 0;               // DDP buckets are views of the contiguous grad buffer
  f.zero3_prefetch_layers = 1;         // Megatron-FSDP / torch FSDP2 gather the next layer ahead
  f.zero3_unsharded_grads = true;
  f.vocab_pad_multiple = 128;          // --make-vocab-size-divisible-by default 128 (arguments.py)
  f.fused_swiglu = true;               // bias_swiglu_impl saves its [gate|up] input only
  f.logits_saved_bytes = 4;            // fp32 softmax kept by VocabParallelCrossEntropy (Korthikanti §4.4: 4sbV/t)
  f.logits_spike_bytes = 2;            // bf16 logits alive beside the fp32 copy; backward works in place
  return f;
}

FrameworkProfile deepspeed() {
  FrameworkProfile f = megatron();
  f.id = Framework::deepspeed;
  f.name = "DeepSpeed";
  f.grad_layout = GradLayout::deepspeed;  // stage_1_and_2.py: fp16 grads + fp32 partition (PR #5099 estimator)
  // reduce_bucket_size default 5e8 elements (deepspeed/runtime/zero/config.py); the contiguous
  // gradient bucket (ipg_buffer) holds it in the 16-bit dtype: 1e9 B. DeepSpeed #1302: buffers are "GBs".
  f.dp_bucket_bytes = 5e8 * 2;
  f.zero3_prefetch_layers = 0;  // ZeRO-3 gathers per module; see memory.cpp (4 B x largest module)
  f.vocab_pad_multiple = 1;
  f.fused_swiglu = false;
  f.logits_spike_bytes = 8;
  return f;
}

FrameworkProfile fsdp() {
  FrameworkProfile f = megatron();
  f.id = Framework::fsdp;
  f.name = "PyTorch FSDP2 (torchtitan)";
  f.dp_bucket_bytes = 0;
  f.zero3_prefetch_layers = 1;  // FSDP2 issues the next layer's all-gather before the current one ends
  f.vocab_pad_multiple = 1;
  f.fused_swiglu = false;       // eager silu(gate) * up saves gate, up, silu(gate) and the product
  // Eager cross-entropy on pred.float(): bf16 logits (2) + fp32 copy (4) at the forward; in the backward
  // the incoming grad (4) and the input grad (4) of log_softmax coexist with the saved output.
  f.logits_saved_bytes = 4;
  f.logits_spike_bytes = 8;
  return f;
}

FrameworkProfile paraplan_executor() {
  FrameworkProfile f = fsdp();
  f.id = Framework::paraplan;
  f.name = "paraplan executor";
  f.zero3_prefetch_layers = 0;  // gathers one layer at a time, frees it after use (executor/zero3)
  f.fused_swiglu = true;        // executor/src/functions.cpp SwiGluFn keeps gate and up only
  f.exact_executor = true;      // op bytes, backward phases and ZeRO buffers: planner/lowering/src/executor_ops.cpp
  return f;
}

}  // namespace

const FrameworkProfile& framework_profile(Framework f) {
  static const FrameworkProfile k_megatron = megatron();
  static const FrameworkProfile k_deepspeed = deepspeed();
  static const FrameworkProfile k_fsdp = fsdp();
  static const FrameworkProfile k_paraplan = paraplan_executor();
  switch (f) {
    case Framework::megatron: return k_megatron;
    case Framework::deepspeed: return k_deepspeed;
    case Framework::fsdp: return k_fsdp;
    case Framework::paraplan: return k_paraplan;
  }
  return k_megatron;
}

//  Megatron-Core distributed_data_parallel.py: max(40,000,000, 1,000,000 x DP size) parameters;
//  DeepSpeed: reduce_bucket_size = 5e8 elements (runtime/zero/config.py default);
//  PyTorch DDP (FSDP and the paraplan executor): bucket_cap_mb = 25 MiB of gradients.
double dp_bucket_params(const Plan& plan, const FrameworkProfile& fw) {
  const double n = static_cast<double>(plan.parallel.dp) * plan.parallel.cp;
  switch (fw.id) {
    case Framework::megatron: return std::max(40e6, 1e6 * n);
    case Framework::deepspeed: return 5e8;
    default: return 25.0 * (1 << 20) / grad_bytes_per_param(plan.training.precision, plan.training.grad_dtype);
  }
}

}  // namespace paraplan::planner

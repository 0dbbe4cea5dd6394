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

// Kernels per op, counted from each framework's layer code (the counts are the launches per micro-batch;
// grad-accumulation adds and bias-gradient reductions are part of the op that owns the parameter).
// Megatron-Core with Transformer Engine (megatron/core/transformer/transformer_layer.py, TE's
// LayerNormLinear / DotProductAttention, core_v0.12): LayerNorm fused into the next GEMM's module (one
// LN kernel, one GEMM; backward dgrad + wgrad accumulating straight into main_grad with
// gradient_accumulation_fusion, LN backward 2), cuDNN fused attention (1 forward, 2 backward), fused
// RoPE, bias-SwiGLU and bias-dropout-add (1 each way). MoE (megatron/core/transformer/moe): the fused
// router (router.py with moe_router_fusion: top-k with its score function, the aux loss's scores and the
// loss, 3 each way); TE's fused moe_permute / moe_unpermute, one kernel per permutation pass each way
// (token_dispatcher.py MoEAlltoAllTokenDispatcher, moe_utils.py permute / sort_chunks_by_idxs / unpermute).
constexpr LaunchProfile kMegatronCoreLaunches{
    .linear = {1, 2}, .norm = {1, 2}, .attention_core = {3, 5}, .flash = {1, 2}, .softmax = {1, 1},
    .activation = {1, 1}, .residual = {1, 1}, .rope = {1, 1}, .embedding = {2, 3}, .loss = {6, 3},
    .moe_router = {3, 3}, .moe_permute = {1, 1}, .per_layer = {2, 2},
    .bwd_host_factor = 0.5,  // backward kernels come from autograd's C++ engine, not Python modules
};

// Megatron-LM of 2021-22 (megatron/model/transformer.py, megatron/mpu/layers.py, fused_layer_norm.py,
// fused_softmax.py, fused_bias_gelu.py at v3.0): apex FusedLayerNorm (1 forward; backward input and
// gamma/beta gradients, 2, plus 2 main_grad accumulation adds from distributed.py's hooks); a linear is
// one GEMM forward, backward dgrad + wgrad + the bias gradient sum + the main_grad add; unfused core
// attention: baddbmm, bmm and the context permute-contiguous forward, 4 bmm + 1 copy backward;
// FusedScaleMaskSoftmax then dropout (2 each way); TorchScript bias_gelu (1 forward; backward
// bias_gelu_back, the bias gradient, its main_grad add); bias_dropout_add (2 each way).
// The fused-softmax gate (fused_softmax.py is_kernel_available): attn_batches % 4 == 0 (and
// 16 < sk <= 2048, sq % 4 == 0); else forward_torch_softmax: scale, masked_fill and softmax on an fp32
// copy, then back to fp16 (softmax_eager, 3x the score traffic). Embedding: VocabParallelEmbedding's
// masking (5), lookup, position lookup, add, dropout. Loss: VocabParallelCrossEntropy's max, subtract,
// exp, sum, masked gather, log, mean. Grad accumulation: distributed.py's hook
// param.main_grad.add_(param.grad.data), 3 passes. Flash, RoPE, MoE and the backward host factor are
// Megatron-Core's. Eager PyTorch (FSDP, torch.compile): the former 8 kernels per MoE op split into the
// router's 4 and 2 per permutation pass (torch.topk / softmax / index_select / scatter_add chains).
constexpr LaunchProfile kMegatron2021Launches{
    .linear = {1, 4}, .norm = {1, 4}, .attention_core = {3, 5}, .flash = {1, 2}, .softmax = {2, 2},
    .activation = {1, 3}, .residual = {2, 2}, .rope = {1, 1}, .embedding = {6, 10}, .loss = {12, 5},
    .moe_router = {3, 3}, .moe_permute = {1, 1}, .per_layer = {2, 2}, .softmax_fused_batch_multiple = 4, .softmax_eager = {6, 6},
    .softmax_eager_traffic = 3, .bwd_host_factor = 0.5, .grad_accumulation_passes = 3,
};

// PyTorch eager, torchtitan's Llama under FSDP2 (torchtitan/models/llama3/model.py): nn.RMSNorm in eager
// (pow, mean, add, rsqrt, mul, mul: 6 forward, ~8 backward), bias-free linears (1 / 2), RoPE through
// view_as_complex (4 / 4), SDPA's flash kernel with its transposes (3 / 3), SiLU times the up projection
// (2 / 4), residual add (1 / 1); FSDP2's all-gather copy-in/out and reduce-scatter copies per layer.
constexpr LaunchProfile kFsdpEagerLaunches{
    .linear = {1, 2}, .norm = {6, 8}, .attention_core = {5, 8}, .flash = {3, 3}, .softmax = {3, 3},
    .activation = {2, 4}, .residual = {1, 1}, .rope = {4, 4}, .embedding = {1, 3}, .loss = {4, 4},
    .moe_router = {4, 4}, .moe_permute = {2, 2}, .per_layer = {3, 5}, .bwd_host_factor = 0.5,
};

// torch.compile (Inductor) fuses the elementwise chains into one kernel each and launches from its
// generated wrapper instead of Python modules; GEMMs and attention stay library calls.
// Everything else is the eager profile's.
constexpr LaunchProfile kFsdpCompileLaunches{
    .linear = {1, 2}, .norm = {1, 2}, .attention_core = {5, 8}, .flash = {3, 3}, .softmax = {1, 1},
    .activation = {1, 1}, .residual = {1, 1}, .rope = {1, 1}, .embedding = {1, 3}, .loss = {2, 2},
    .moe_router = {4, 4}, .moe_permute = {2, 2}, .per_layer = {3, 5}, .bwd_host_factor = 0.5,
};

// paraplan's CPU executor (executor/src/functions.cpp): every op is a few ATen calls, run as they are
// called on the worker's thread.
constexpr LaunchProfile kParaplanLaunches{
    .linear = {1, 2}, .norm = {4, 6}, .attention_core = {4, 6}, .flash = {4, 6}, .softmax = {1, 1},
    .activation = {3, 5}, .residual = {1, 1}, .rope = {4, 4}, .embedding = {1, 2}, .loss = {3, 3},
    .moe_router = {3, 3}, .moe_permute = {1, 1}, .per_layer = {2, 2}, .bwd_host_factor = 1,
};

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
  f.launches = kMegatronCoreLaunches;
  f.te_fp8 = true;                     // Megatron-Core's transformer_impl "transformer_engine"
  f.moe_probs_in_activation = true;    // Megatron-Core 0.13 and later (framework.hpp)
  f.interleaved_p2p_overlap = true;    // overlap_p2p_comm (framework.hpp)
  return f;
}

// A framework that starts from `base` and differs in its identity and kernel launches; the callers
// override what else differs. Megatron-Core's pipeline-transfer overlap is its own: not inherited.
FrameworkProfile variant(FrameworkProfile base, Framework id, const char* name, const LaunchProfile& launches) {
  base.id = id;
  base.name = name;
  base.launches = launches;
  base.interleaved_p2p_overlap = false;
  return base;
}

FrameworkProfile megatron_2021() {
  FrameworkProfile f = variant(megatron(), Framework::megatron_2021, "Megatron-LM (2021-22)", kMegatron2021Launches);
  // Before Transformer Engine (2022) and Megatron-Core's MoE: FP8 and experts, if asked for, counted in 16 bits
  // and weighted in the combine, as for the other frameworks without these rules.
  f.te_fp8 = false;
  f.moe_probs_in_activation = false;
  return f;
}

FrameworkProfile deepspeed() {
  FrameworkProfile f = variant(megatron(), Framework::deepspeed, "DeepSpeed", kMegatronCoreLaunches);
  f.grad_layout = GradLayout::deepspeed;  // stage_1_and_2.py: fp16 grads + fp32 partition (PR #5099 estimator)
  // reduce_bucket_size default 5e8 elements (deepspeed/runtime/zero/config.py); the contiguous
  // gradient bucket (ipg_buffer) holds it in the 16-bit dtype: 1e9 B. DeepSpeed #1302: buffers are "GBs".
  f.dp_bucket_bytes = 5e8 * 2;
  f.zero3_prefetch_layers = 0;  // ZeRO-3 gathers per module; see memory.cpp (4 B x largest module)
  f.vocab_pad_multiple = 1;
  f.fused_swiglu = false;
  f.logits_spike_bytes = 8;
  // DeepSpeed-MoE's combine weights the expert outputs (deepspeed/moe/sharded_moe.py, einsum "sec,ecm->sm"),
  // keeping them for the gradient; FP8 is the model code's, not DeepSpeed's: counted in 16 bits.
  f.te_fp8 = false;
  f.moe_probs_in_activation = false;
  return f;
}

// FSDP2 keeps Megatron's dp_bucket_bytes (0), zero3_prefetch_layers (1: FSDP2 issues the next layer's
// all-gather before the current one ends) and logits_saved_bytes (4).
FrameworkProfile fsdp() {
  FrameworkProfile f = variant(megatron(), Framework::fsdp, "PyTorch FSDP2 (torchtitan)", kFsdpEagerLaunches);
  f.vocab_pad_multiple = 1;
  f.fused_swiglu = false;  // eager silu(gate) * up saves gate, up, silu(gate) and the product
  // Eager cross-entropy on pred.float(): bf16 logits (2) + fp32 copy (4) at the forward; in the backward
  // the incoming grad (4) and the input grad (4) of log_softmax coexist with the saved output.
  f.logits_spike_bytes = 8;
  // Not checked against torchao's float8 training or torchtitan's MoE: saved tensors counted in 16 bits and
  // the expert outputs kept for the scores' gradient, as for every framework before these two flags.
  f.te_fp8 = false;
  f.moe_probs_in_activation = false;
  return f;
}

FrameworkProfile fsdp_compile() {
  return variant(fsdp(), Framework::fsdp_compile, "PyTorch FSDP2 + torch.compile", kFsdpCompileLaunches);
}

FrameworkProfile paraplan_executor() {
  FrameworkProfile f = variant(fsdp(), Framework::paraplan, "paraplan executor", kParaplanLaunches);
  f.zero3_prefetch_layers = 0;  // gathers one layer at a time, frees it after use (executor/zero3)
  f.fused_swiglu = true;        // executor/src/functions.cpp SwiGluFn keeps gate and up only
  f.exact_executor = true;      // op bytes, backward phases and ZeRO buffers: planner/lowering/src/executor_ops.cpp
  f.dp_per_unit = true;         // executor/src/zero_engine.cpp finish_unit
  f.step_loss_all_reduces = 1;  // executor/src/trainer.cpp: the loss summed over DP each step
  f.clips_grad_norm = false;    // executor/src/adamw.cpp: the update alone, no gradient clipping
  return f;
}

}  // namespace

const FrameworkProfile& framework_profile(Framework f) {
  static const FrameworkProfile k_megatron = megatron();
  static const FrameworkProfile k_deepspeed = deepspeed();
  static const FrameworkProfile k_fsdp = fsdp();
  static const FrameworkProfile k_paraplan = paraplan_executor();
  static const FrameworkProfile k_megatron_2021 = megatron_2021();
  static const FrameworkProfile k_fsdp_compile = fsdp_compile();
  switch (f) {
    case Framework::megatron: return k_megatron;
    case Framework::deepspeed: return k_deepspeed;
    case Framework::fsdp: return k_fsdp;
    case Framework::paraplan: return k_paraplan;
    case Framework::megatron_2021: return k_megatron_2021;
    case Framework::fsdp_compile: return k_fsdp_compile;
  }
  return k_megatron;
}

//  Megatron-Core distributed_data_parallel.py: max(40,000,000, 1,000,000 x DP size) parameters;
//  DeepSpeed: reduce_bucket_size = 5e8 elements (runtime/zero/config.py default);
//  PyTorch DDP (FSDP and the paraplan executor): bucket_cap_mb = 25 MiB of gradients.
double dp_bucket_params(const Plan& plan, const FrameworkProfile& fw) {
  const double n = static_cast<double>(plan.parallel.dp) * plan.parallel.cp;
  switch (fw.id) {
    case Framework::megatron:
    case Framework::megatron_2021: return std::max(40e6, 1e6 * n);
    case Framework::deepspeed: return 5e8;
    default: return 25.0 * (1 << 20) / grad_bytes_per_param(plan.training.precision, plan.training.grad_dtype);
  }
}

}  // namespace paraplan::planner

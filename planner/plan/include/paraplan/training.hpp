#pragma once
// TrainingSpec: the recipe (sequence, batch, precision, optimizer, recompute, LoRA, offload).
#include <cstdint>
#include <optional>
#include <string>

namespace paraplan::planner {

enum class Precision { fp32, bf16, fp16, fp8 };  // fp8: FP8 GEMMs (Transformer Engine), bf16 weights
enum class GradDtype { fp32, bf16, fp16 };
enum class Optimizer { adamw, adam, sgd, sgd_momentum, adam8bit };
enum class Recompute { none, selective, full };
enum class Offload { none, optimizer, optimizer_params };
enum class LoraBase { fp32, bf16, nf4 };
// How the training framework lays memory out (buffers, overheads, gradient copies) and which kernels it
// launches; see framework.hpp. megatron: Megatron-Core with Transformer Engine; megatron_2021: Megatron-LM
// of 2021-22 (apex and TorchScript fusions, unfused attention); fsdp: PyTorch FSDP2 in eager mode
// (torchtitan); fsdp_compile: the same under torch.compile.
enum class Framework { megatron, deepspeed, fsdp, paraplan, megatron_2021, fsdp_compile };
// The loss kernel over the vocabulary. unfused: each framework's own (Megatron's VocabParallelCrossEntropy
// keeps an fp32 copy of the logits); te: Transformer Engine's parallel_cross_entropy, which keeps only the
// 16-bit logits and writes their gradient in place (Megatron-Core cross_entropy_fusion_impl "te", the
// Megatron-Bridge default).
enum class CrossEntropy { unfused, te };

// LoRA targets as a bit set over the projections of a LLaMA-style block.
enum LoraTarget : unsigned {
  kQProj = 1u << 0, kKProj = 1u << 1, kVProj = 1u << 2, kOProj = 1u << 3,
  kGateProj = 1u << 4, kUpProj = 1u << 5, kDownProj = 1u << 6,
};
inline constexpr const char* kLoraTargetNames[] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                   "gate_proj", "up_proj", "down_proj"};

struct LoraSpec {
  int rank = 8;
  double alpha = 16;
  unsigned targets = kQProj | kVProj;
  LoraBase base = LoraBase::bf16;
  double dropout = 0.0;  // lora_dropout; > 0 makes every adapter keep its own dropped-out input
  bool has(LoraTarget t) const { return (targets & t) != 0; }
  bool operator==(const LoraSpec&) const = default;
};

struct TrainingSpec {
  int64_t seq_len = 4096;
  int micro_batch = 1;
  int64_t global_batch = 0;  // sequences per optimizer step; default: dp * micro_batch
  Precision precision = Precision::bf16;
  GradDtype grad_dtype = GradDtype::fp32;
  Optimizer optimizer = Optimizer::adamw;
  Recompute recompute = Recompute::none;
  bool flash_attention = true;
  std::optional<LoraSpec> lora;
  Offload offload = Offload::none;
  double dropout = 0.0;  // hidden and attention dropout probability (GPT-3 era: 0.1; LLaMA: 0)
  std::optional<Framework> framework;  // default chosen from the cluster: paraplan on "cpu", else megatron
  CrossEntropy cross_entropy = CrossEntropy::unfused;
  bool operator==(const TrainingSpec&) const = default;
};

const char* to_string(Precision p);
const char* to_string(GradDtype g);
const char* to_string(Optimizer o);
const char* to_string(Recompute r);
const char* to_string(Offload o);
const char* to_string(LoraBase b);
const char* to_string(Framework f);
const char* to_string(CrossEntropy c);

}  // namespace paraplan::planner

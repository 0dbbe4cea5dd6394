#pragma once
// Shared pieces of the exporters (export_*.cpp): collecting what a target cannot express, the
// Hugging Face family of a model, and quoting for the text formats paraplan writes itself.
#include <string>
#include <vector>

#include "paraplan/error.hpp"
#include "paraplan/plan.hpp"

namespace paraplan::planner::detail {

// Collects every field a target cannot express, so that the user sees all of them at once.
class Inexpressible {
 public:
  explicit Inexpressible(std::string target) : target_(std::move(target)) {}
  // "<target> cannot express this: <why>" under the field and value.
  void add(const std::string& field, const std::string& value, const std::string& why);
  void throw_if_any() const { errors_.throw_if_any(); }

 private:
  std::string target_;
  Violations errors_;
};

// The limits every FSDP-based target (accelerate, torchtitan) shares, each with that target's reason:
// gradients other than fp32 (FSDP keeps and reduces them in fp32) and selective (attention-core-only)
// recompute, which FSDP's activation checkpointing does not offer.
struct FsdpReasons {
  const char* grad_dtype;
  const char* selective_recompute;
};
void reject_fsdp_limits(const TrainingSpec& t, Inexpressible& no, const FsdpReasons& why);
// training.cross_entropy "te" (Transformer Engine's fused loss), which the target cannot select: `why`.
void reject_te_cross_entropy(const TrainingSpec& t, Inexpressible& no, const std::string& why);
// The reason for targets that train a Transformers model (DeepSpeed, accelerate): its own loss.
inline constexpr const char* kTransformersLoss =
    "the loss is the model code's (a Transformers model computes it on an fp32 copy of the logits), not "
    "Transformer Engine's fused cross entropy; plan with training.cross_entropy unfused";

// Hugging Face model_type of the plan's model: read from its hf_config, else known for the presets
// that are Hugging Face models (llama3-*, mixtral-8x7b, deepseek-v3); "" when unknown.
std::string hf_model_type(const ModelSpec& m);
// Decoder-layer class of a Transformers model family (the unit FSDP wraps); "" when not verified.
std::string hf_decoder_layer_class(const std::string& model_type);
// The LoRA/QLoRA settings a PEFT LoraConfig needs, for targets whose config has no LoRA section.
std::string peft_note(const LoraSpec& lora);
// 8030261248 -> "8,030,261,248".
// Layers per model chunk as a readable list: "[7, 9, 9, 7]".
std::string list_of(const std::vector<int>& v);

std::string toml_string(const std::string& s);  // basic string with escapes
std::string yaml_string(const std::string& s);  // single-quoted scalar

}  // namespace paraplan::planner::detail

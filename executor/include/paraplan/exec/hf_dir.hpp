#pragma once
// A Hugging Face model directory without LibTorch: config.json, and the weights in model.safetensors
// or in shards listed by model.safetensors.index.json ({"metadata": {"total_size"}, "weight_map":
// {tensor: file}}, transformers' modeling_utils save_pretrained / huggingface_hub
// split_torch_state_dict_into_shards). Reading resolves which file holds each tensor; writing plans
// the shards.
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "paraplan/exec/layout.hpp"
#include "paraplan/exec/safetensors.hpp"

namespace paraplan::exec {

// The tensors of a checkpoint directory, each with the (parsed) file that holds it.
class HfWeights {
 public:
  // FormatError naming the directory when it has no weights, the index when it is malformed or names
  // a missing shard, and the shard when that is corrupt.
  explicit HfWeights(const std::string& dir);
  const std::string& dir() const { return dir_; }
  // The entry and its file, or nullptr when no file holds `name`.
  const TensorEntry* find(const std::string& name, const SafetensorsFile** file) const;
  std::vector<std::string> names() const;

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;  // tensor -> index into files_
};

// config.json for the model as transformers' LlamaConfig spells it (model_type "llama"); extras give
// rms_norm_eps and rope_theta. torch_dtype is "float32" or "bfloat16".
nlohmann::json hf_config_for(const planner::ModelSpec& m, const ModelExtras& extras, const std::string& torch_dtype);
// rms_norm_eps / layer_norm_epsilon and rope_theta from a config.json, defaults otherwise.
ModelExtras extras_from_hf_config(const nlohmann::json& config);
// The trainer runs LLaMA's and GPT-2's blocks. A checkpoint directory whose config.json names a family
// the planner reads but the trainer does not run as transformers does is refused before its weights are
// read: FormatError naming config.json, the model_type and why (Granite's tensors carry LLaMA's names, so
// they would load, and train a function without its multipliers). A directory without config.json, or
// another model_type, passes: tensors the model does not have are refused by name as they are read.
void check_trainer_runs_family(const std::string& dir);
// The same for one config.json (the plan's model.hf_config: the family the weights are loaded for).
void check_trainer_runs_config(const std::string& config_json);

// GPT-2's layout (transformers GPT2LMHeadModel, Radford et al. 2019): a GPT-shaped model (LayerNorm,
// GeLU, biases everywhere, learned positions, tied embeddings, as many kv heads as heads) is stored under
// GPT-2's names, with q, k, v fused in attn.c_attn and every linear weight in Conv1D's [in, out] layout,
// the transpose of nn.Linear's. A parameter is `parts` equal slices of the last dimension of `name`.
bool is_gpt2_shape(const planner::ModelSpec& m);
struct Gpt2Source {
  std::string name;     // e.g. "h.0.attn.c_attn.weight"
  int part = 0, parts = 1;
  bool transpose = false;
};
// FormatError for a parameter with no GPT-2 counterpart.
Gpt2Source gpt2_source(const std::string& param_name);
// config.json as transformers' GPT2Config spells it (model_type "gpt2").
nlohmann::json gpt2_config_for(const planner::ModelSpec& m, const ModelExtras& extras, const std::string& torch_dtype);

// Splits tensors, in order, into shards of at most max_shard_bytes (a tensor larger than that gets a
// shard of its own). One shard is written as model.safetensors without an index; more are written as
// model-0000k-of-0000n.safetensors with model.safetensors.index.json.
struct ShardPlan {
  std::vector<std::string> files;             // file names in the directory
  std::vector<int> shard_of;                  // per tensor: index into files
  bool indexed = false;
};
ShardPlan plan_shards(const std::vector<uint64_t>& tensor_bytes, uint64_t max_shard_bytes);
nlohmann::json shard_index(const ShardPlan& plan, const std::vector<std::string>& names, uint64_t total_bytes);

}  // namespace paraplan::exec

#include "paraplan/exec/hf_dir.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace paraplan::exec {

namespace fs = std::filesystem;
using nlohmann::json;

HfWeights::HfWeights(const std::string& dir) : dir_(dir) {
  if (!fs::is_directory(dir)) throw FormatError(dir + ": not a directory");
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  const fs::path single = fs::path(dir) / "model.safetensors";
  std::vector<std::string> shard_names;
  if (fs::exists(index)) {
    std::ifstream in(index);
    json j;
    try {
      j = json::parse(in);
    } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e400
      throw FormatError(index.string() + ": not valid JSON (" + e.what() + ")");
    }
    if (!j.contains("weight_map") || !j["weight_map"].is_object())
      throw FormatError(index.string() + ": needs a \"weight_map\" object {tensor: file}");
    std::map<std::string, size_t> file_index;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string())
        throw FormatError(index.string() + ": weight_map." + it.key() + " must be a file name");
      const std::string file = it.value().get<std::string>();
      if (!file_index.count(file)) {
        const fs::path p = fs::path(dir) / file;
        if (!fs::exists(p))
          throw FormatError(index.string() + ": weight_map." + it.key() + " names " + file + ", which does not exist");
        file_index[file] = files_.size();
        files_.push_back(std::make_unique<SafetensorsFile>(p.string()));
      }
      const size_t f = file_index[file];
      if (!files_[f]->find(it.key()))
        throw FormatError(files_[f]->path() + ": has no tensor " + it.key() + " (model.safetensors.index.json says it does)");
      where_[it.key()] = f;
    }
    return;
  }
  if (fs::exists(single)) {
    shard_names.push_back(single.string());
  } else {
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".safetensors") shard_names.push_back(e.path().string());
    std::sort(shard_names.begin(), shard_names.end());
  }
  if (shard_names.empty())
    throw FormatError(dir + ": no weights (model.safetensors, model.safetensors.index.json or *.safetensors)");
  for (const std::string& p : shard_names) {
    files_.push_back(std::make_unique<SafetensorsFile>(p));
    for (const auto& t : files_.back()->tensors()) where_[t.name] = files_.size() - 1;
  }
}

const TensorEntry* HfWeights::find(const std::string& name, const SafetensorsFile** file) const {
  auto it = where_.find(name);
  if (it == where_.end()) return nullptr;
  *file = files_[it->second].get();
  return files_[it->second]->find(name);
}

std::vector<std::string> HfWeights::names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : where_) out.push_back(k);
  return out;
}

json hf_config_for(const planner::ModelSpec& m, const ModelExtras& extras, const std::string& torch_dtype) {
  using namespace planner;
  json c = {{"architectures", {"LlamaForCausalLM"}},
            {"model_type", "llama"},
            {"hidden_size", m.hidden},
            {"intermediate_size", m.ffn_hidden},
            {"num_hidden_layers", m.layers},
            {"num_attention_heads", m.heads},
            {"num_key_value_heads", m.kv_heads},
            {"head_dim", m.head_dim},
            {"vocab_size", m.vocab},
            {"hidden_act", "silu"},
            {"rms_norm_eps", extras.norm_eps},
            {"rope_theta", extras.rope_theta},
            {"tie_word_embeddings", m.tied_embeddings},
            // modeling_llama.py: attention_bias on q, k, v and o; mlp_bias on gate, up and down.
            {"attention_bias", m.o_bias()},
            {"mlp_bias", m.mlp_bias()},
            {"torch_dtype", torch_dtype}};
  if (!m.name.empty()) c["_name_or_path"] = m.name;
  return c;
}

bool is_gpt2_shape(const planner::ModelSpec& m) {
  using namespace planner;
  return m.activation == Activation::gelu && m.norm == Norm::layernorm && m.bias == Bias::all &&
         m.position_embedding == PositionEmbedding::learned && m.tied_embeddings && m.kv_heads == m.heads &&
         m.head_dim * m.heads == m.hidden;
}

Gpt2Source gpt2_source(const std::string& name) {
  // transformers modeling_gpt2.py: wte, wpe, h.N.{ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj}, ln_f.
  if (name == "model.embed_tokens.weight") return {"wte.weight"};
  if (name == "model.embed_positions.weight") return {"wpe.weight"};
  const std::string norm = "model.norm.";
  if (name.rfind(norm, 0) == 0) return {"ln_f." + name.substr(norm.size())};
  const std::string layers = "model.layers.";
  if (name.rfind(layers, 0) == 0) {
    const size_t dot = name.find('.', layers.size());
    const std::string h = "h." + name.substr(layers.size(), dot - layers.size()) + ".";
    const std::string rest = name.substr(dot + 1);  // e.g. "self_attn.q_proj.weight"
    const bool weight = rest.size() > 7 && rest.compare(rest.size() - 7, 7, ".weight") == 0;
    const std::string leaf = weight ? "weight" : "bias";
    auto starts = [&](const char* p) { return rest.rfind(p, 0) == 0; };
    if (starts("input_layernorm.")) return {h + "ln_1." + leaf};
    if (starts("post_attention_layernorm.")) return {h + "ln_2." + leaf};
    const char* qkv[] = {"self_attn.q_proj.", "self_attn.k_proj.", "self_attn.v_proj."};
    for (int i = 0; i < 3; ++i)
      if (starts(qkv[i])) return {h + "attn.c_attn." + leaf, i, 3, weight};
    if (starts("self_attn.o_proj.")) return {h + "attn.c_proj." + leaf, 0, 1, weight};
    if (starts("mlp.up_proj.")) return {h + "mlp.c_fc." + leaf, 0, 1, weight};
    if (starts("mlp.down_proj.")) return {h + "mlp.c_proj." + leaf, 0, 1, weight};
  }
  throw FormatError("parameter " + name + " has no place in GPT-2's checkpoint layout");
}

json gpt2_config_for(const planner::ModelSpec& m, const ModelExtras& extras, const std::string& torch_dtype) {
  json c = {{"architectures", {"GPT2LMHeadModel"}},
            {"model_type", "gpt2"},
            {"n_embd", m.hidden},
            {"n_layer", m.layers},
            {"n_head", m.heads},
            {"n_inner", m.ffn_hidden},
            {"n_positions", m.max_seq_len},
            {"vocab_size", m.vocab},
            {"activation_function", "gelu_new"},
            {"layer_norm_epsilon", extras.norm_eps},
            {"tie_word_embeddings", true},
            {"torch_dtype", torch_dtype}};
  if (!m.name.empty()) c["_name_or_path"] = m.name;
  return c;
}

ModelExtras extras_from_hf_config(const json& c) {
  ModelExtras e;
  for (const char* k : {"rms_norm_eps", "layer_norm_epsilon", "layer_norm_eps"})
    if (c.contains(k) && c[k].is_number()) e.norm_eps = c[k].get<double>();
  if (c.contains("rope_theta") && c["rope_theta"].is_number()) e.rope_theta = c["rope_theta"].get<double>();
  return e;
}

void check_trainer_runs_family(const std::string& dir) {
  const fs::path file = fs::path(dir) / "config.json";
  if (fs::exists(file)) check_trainer_runs_config(file.string());
}

void check_trainer_runs_config(const std::string& config_json) {
  const fs::path file(config_json);
  std::ifstream in(file);
  json c;
  try {
    c = json::parse(in);
  } catch (const json::exception& e) {
    throw FormatError(file.string() + ": not valid JSON (" + e.what() + ")");
  }
  if (!c.is_object() || !c.contains("model_type") || !c["model_type"].is_string()) return;
  const std::string type = c["model_type"].get<std::string>();
  std::string why;
  if (type == "granite")
    why = "Granite's block is LLaMA's with four scalar multipliers (embedding_multiplier, attention_multiplier, "
          "residual_multiplier, logits_scaling) that paraplan's trainer does not apply: its weights would load "
          "under LLaMA's names and train another function";
  else if (type == "gpt_neox")
    why = "GPT-NeoX's fused query_key_value (heads interleaved), parallel residual and partial rotary are not "
          "in paraplan's trainer";
  else if (type == "starcoder2")
    why = "StarCoder2's sliding window and tensor names (mlp.c_fc, mlp.c_proj) are not in paraplan's trainer";
  if (!why.empty())
    throw FormatError(file.string() + ": model_type = \"" + type + "\": its weights cannot be loaded: " + why +
                      " (`paraplan plan` and `search` cost the model; the trainer loads LLaMA- and GPT-2-shaped "
                      "checkpoints)");
}

ShardPlan plan_shards(const std::vector<uint64_t>& tensor_bytes, uint64_t max_shard_bytes) {
  ShardPlan p;
  int shard = 0;
  uint64_t in_shard = 0;
  for (size_t i = 0; i < tensor_bytes.size(); ++i) {
    if (in_shard > 0 && in_shard + tensor_bytes[i] > max_shard_bytes) {
      ++shard;
      in_shard = 0;
    }
    p.shard_of.push_back(shard);
    in_shard += tensor_bytes[i];
  }
  const int n = tensor_bytes.empty() ? 1 : shard + 1;
  p.indexed = n > 1;
  for (int s = 0; s < n; ++s) {
    if (!p.indexed) {
      p.files.push_back("model.safetensors");
      break;
    }
    char name[64];
    std::snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, n);
    p.files.push_back(name);
  }
  return p;
}

json shard_index(const ShardPlan& plan, const std::vector<std::string>& names, uint64_t total_bytes) {
  json map = json::object();
  for (size_t i = 0; i < names.size(); ++i) map[names[i]] = plan.files[static_cast<size_t>(plan.shard_of[i])];
  return {{"metadata", {{"total_size", total_bytes}}}, {"weight_map", map}};
}

}  // namespace paraplan::exec

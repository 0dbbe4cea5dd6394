// export_plan: dispatch to the target's exporter, plus the helpers the exporters share.
#include "paraplan/export.hpp"

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "export_util.hpp"

namespace paraplan::planner {

namespace {

const std::vector<std::pair<std::string, ExportFormat>>& format_table() {
  static const std::vector<std::pair<std::string, ExportFormat>> table{{"megatron", ExportFormat::megatron},
                                                                       {"deepspeed", ExportFormat::deepspeed},
                                                                       {"torchtitan", ExportFormat::torchtitan},
                                                                       {"accelerate", ExportFormat::accelerate},
                                                                       {"torchrun", ExportFormat::torchrun}};
  return table;
}

}  // namespace

const char* to_string(ExportFormat f) {
  for (const auto& [name, value] : format_table())
    if (value == f) return name.c_str();
  return "?";
}

const std::vector<std::string>& export_format_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& entry : format_table()) n.push_back(entry.first);
    return n;
  }();
  return names;
}

ExportFormat parse_export_format(const std::string& name) {
  for (const auto& [n, value] : format_table())
    if (n == name) return value;
  std::string known;
  for (const auto& n : export_format_names()) known += (known.empty() ? "" : ", ") + n;
  std::string rule = "must be one of " + known;
  if (const std::string close = closest_match(name, export_format_names()); !close.empty())
    rule += " (did you mean " + close + "?)";
  throw PlanError("--format", name, rule);
}

ExportResult export_plan(const Plan& plan, ExportFormat format, const ExportOptions& options) {
  switch (format) {
    case ExportFormat::megatron: return export_megatron(plan);
    case ExportFormat::deepspeed: return export_deepspeed(plan);
    case ExportFormat::torchtitan: return export_torchtitan(plan);
    case ExportFormat::accelerate: return export_accelerate(plan);
    case ExportFormat::torchrun: return export_torchrun(plan, options);
  }
  throw PlanError("--format", "?", "unknown export format");
}

namespace detail {

void Inexpressible::add(const std::string& field, const std::string& value, const std::string& why) {
  errors_.add(field, value, target_ + " cannot express this: " + why);
}

void reject_te_cross_entropy(const TrainingSpec& t, Inexpressible& no, const std::string& why) {
  if (t.cross_entropy == CrossEntropy::te) no.add("training.cross_entropy", "te", why);
}

void reject_fsdp_limits(const TrainingSpec& t, Inexpressible& no, const FsdpReasons& why) {
  if (t.grad_dtype != GradDtype::fp32) no.add("training.grad_dtype", to_string(t.grad_dtype), why.grad_dtype);
  if (t.recompute == Recompute::selective) no.add("training.recompute", "selective", why.selective_recompute);
}

std::string hf_model_type(const ModelSpec& m) {
  if (!m.hf_config.empty()) {
    std::ifstream in(m.hf_config);
    const nlohmann::json c = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (c.is_object() && c.contains("model_type") && c["model_type"].is_string())
      return c["model_type"].get<std::string>();
    return "";
  }
  // Presets that are Hugging Face checkpoints (their "source" in data/models/*.json names the repo).
  static const std::map<std::string, std::string> presets{{"llama3-8b", "llama"},   {"llama3-70b", "llama"},
                                                          {"llama3-405b", "llama"}, {"llama3.2-1b", "llama"},
                                                          {"tiny-llama", "llama"},  {"mixtral-8x7b", "mixtral"},
                                                          {"deepseek-v3", "deepseek_v3"}, {"qwen3-30b-a3b", "qwen3_moe"},
                                                          {"qwen3-235b-a22b", "qwen3_moe"}};
  const auto it = presets.find(m.preset);
  return it == presets.end() ? "" : it->second;
}

std::string hf_decoder_layer_class(const std::string& model_type) {
  // huggingface/transformers src/transformers/models/<type>/modeling_<type>.py (main, 2026):
  // `class <Name>(GradientCheckpointingLayer)`, the class each model lists in _no_split_modules.
  static const std::map<std::string, std::string> classes{{"llama", "LlamaDecoderLayer"},
                                                          {"mistral", "MistralDecoderLayer"},
                                                          {"qwen2", "Qwen2DecoderLayer"},
                                                          {"qwen3", "Qwen3DecoderLayer"},
                                                          {"qwen3_moe", "Qwen3MoeDecoderLayer"},
                                                          {"mixtral", "MixtralDecoderLayer"},
                                                          {"gpt2", "GPT2Block"},
                                                          {"granite", "GraniteDecoderLayer"},
                                                          {"gpt_neox", "GPTNeoXLayer"},
                                                          {"starcoder2", "Starcoder2DecoderLayer"},
                                                          {"deepseek_v2", "DeepseekV2DecoderLayer"},
                                                          {"deepseek_v3", "DeepseekV3DecoderLayer"}};
  const auto it = classes.find(model_type);
  return it == classes.end() ? "" : it->second;
}

std::string peft_note(const LoraSpec& lora) {
  std::string targets;
  for (unsigned i = 0; i < 7; ++i)
    if (lora.targets & (1u << i)) targets += std::string(targets.empty() ? "" : ", ") + kLoraTargetNames[i];
  std::ostringstream s;
  s << "LoRA lives in the model code, not in this config: wrap the model with PEFT "
    << "LoraConfig(r=" << lora.rank << ", lora_alpha=" << lora.alpha << ", lora_dropout=" << lora.dropout
    << ", target_modules=[" << targets << "])";
  if (lora.base == LoraBase::nf4)
    s << " on a base loaded in 4 bits (bitsandbytes BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=\"nf4\"))";
  else
    s << " on a " << to_string(lora.base) << " base";
  return s.str();
}

std::string list_of(const std::vector<int>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

std::string toml_string(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string yaml_string(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

}  // namespace detail

}  // namespace paraplan::planner

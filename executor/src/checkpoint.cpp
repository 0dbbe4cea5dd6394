#include "checkpoint.hpp"

#include <ATen/Parallel.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "paraplan/exec/hf_dir.hpp"
#include "paraplan/exec/memory_meter.hpp"

namespace paraplan::exec {

namespace fs = std::filesystem;
using namespace planner;

namespace {

uint64_t mix(uint64_t z) {  // splitmix64 (Steele, Lea & Flood 2014)
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t hash_name(const std::string& s) {  // FNV-1a 64
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

double uniform01(uint64_t x) { return (static_cast<double>(mix(x) >> 11) + 0.5) / 9007199254740992.0; }

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

std::string model_dims(const ModelSpec& m) {
  return "layers " + std::to_string(m.layers) + ", hidden " + std::to_string(m.hidden) + ", heads " +
         std::to_string(m.heads) + ", kv_heads " + std::to_string(m.kv_heads) + ", head_dim " +
         std::to_string(m.head_dim) + ", ffn_hidden " + std::to_string(m.ffn_hidden) + ", vocab " +
         std::to_string(m.vocab);
}

at::ScalarType torch_type(Dtype d, const std::string& where) {
  switch (d) {
    case Dtype::f32: return at::kFloat;
    case Dtype::bf16: return at::kBFloat16;
    case Dtype::f16: return at::kHalf;
    case Dtype::f64: return at::kDouble;
    default: break;
  }
  throw FormatError(where + ": dtype " + safetensors_name(d) + " cannot hold weights (F32, BF16, F16 or F64)");
}

Dtype file_type(at::ScalarType t) {
  if (t == at::kBFloat16) return Dtype::bf16;
  if (t == at::kHalf) return Dtype::f16;
  return Dtype::f32;
}

// Reads one tensor of `file` into dst (float32, the parameter's shape), converting the dtype.
void read_into(const SafetensorsFile& file, const TensorEntry& e, const ParamInfo& p, at::Tensor& dst,
               const std::string& model_note) {
  if (e.shape != p.shape)
    throw FormatError(file.path() + ": tensor " + e.name + " has shape " + shape_str(e.shape) +
                      " but the model needs " + shape_str(p.shape) + " (" + model_note + ")");
  CategoryScope cat(MemCategory::other);
  at::Tensor tmp = at::empty(e.shape, at::TensorOptions().dtype(torch_type(e.dtype, file.path() + ": tensor " + e.name)));
  file.read(e, tmp.data_ptr());
  dst.copy_(tmp);
}

bool is_lora(const ParamInfo& p) { return p.role == Role::lora_a || p.role == Role::lora_b; }

}  // namespace

void init_param(const ParamInfo& p, uint64_t seed, at::Tensor& dst) {
  at::NoGradGuard no_grad;
  switch (p.role) {
    case Role::attn_norm_w: case Role::mlp_norm_w: case Role::final_norm_w:
      dst.fill_(1.0);
      return;
    case Role::attn_norm_b: case Role::mlp_norm_b: case Role::final_norm_b: case Role::q_b: case Role::k_b:
    case Role::v_b: case Role::o_b: case Role::gate_b: case Role::up_b: case Role::down_b: case Role::lora_b:
      dst.zero_();
      return;
    default: break;
  }
  CategoryScope cat(MemCategory::other);
  at::Tensor cpu = at::empty(p.shape, at::TensorOptions().dtype(at::kFloat));
  float* out = cpu.data_ptr<float>();
  const uint64_t base = mix(seed ^ hash_name(p.name));
  if (p.role == Role::lora_a) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(p.shape[1]));
    at::parallel_for(0, cpu.numel(), 1 << 14, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        out[i] = static_cast<float>((2 * uniform01(base + static_cast<uint64_t>(i)) - 1) * bound);
    });
  } else {
    // Box-Muller (1958) from two uniforms per element.
    at::parallel_for(0, cpu.numel(), 1 << 14, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const double u1 = uniform01(base + 2 * static_cast<uint64_t>(i)), u2 = uniform01(base + 2 * static_cast<uint64_t>(i) + 1);
        out[i] = static_cast<float>(0.02 * std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2));
      }
    });
  }
  dst.copy_(cpu);
}

// ---- reading ----

struct CheckpointReader::Impl {
  HfWeights weights;
  std::string note;
  Impl(const std::string& dir, const ModelSpec& m) : weights(dir), note("model: " + model_dims(m)) {}
};

CheckpointReader::CheckpointReader(const std::string& dir, const ModelSpec& spec)
    : impl_(std::make_unique<Impl>(dir, spec)) {
  // Tensors the model does not have mean the directory is for another model.
  const ModelLayout layout = model_layout(spec, std::nullopt);
  for (const std::string& name : impl_->weights.names()) {
    if (layout.find(name)) continue;
    if (name.size() > 19 && name.compare(name.size() - 19, 19, "rotary_emb.inv_freq") == 0) continue;  // a buffer
    if (name == "lm_head.weight" && spec.tied_embeddings) continue;  // some tied checkpoints store it too
    const SafetensorsFile* f = nullptr;
    impl_->weights.find(name, &f);
    throw FormatError(f->path() + ": tensor " + name + " is not part of the model (" + impl_->note + ")");
  }
}

CheckpointReader::~CheckpointReader() = default;

bool CheckpointReader::has(const std::string& name) const {
  const SafetensorsFile* f = nullptr;
  return impl_->weights.find(name, &f) != nullptr;
}

void CheckpointReader::read(const ParamInfo& p, at::Tensor& dst) const {
  const SafetensorsFile* f = nullptr;
  const TensorEntry* e = impl_->weights.find(p.name, &f);
  if (!e)
    throw FormatError(impl_->weights.dir() + ": no tensor " + p.name + " in the checkpoint (" + impl_->note + ")");
  read_into(*f, *e, p, dst, impl_->note);
}

struct AdapterReader::Impl {
  SafetensorsFile file;
  explicit Impl(const std::string& dir) : file((fs::path(dir) / "adapter_model.safetensors").string()) {}
};

AdapterReader::AdapterReader(const std::string& dir) : impl_(std::make_unique<Impl>(dir)) {}
AdapterReader::~AdapterReader() = default;

void AdapterReader::read(const ParamInfo& p, at::Tensor& dst) const {
  const std::string name = peft_name(p.name);
  const TensorEntry* e = impl_->file.find(name);
  if (!e) throw FormatError(impl_->file.path() + ": no tensor " + name + " (training.lora.targets asks for it)");
  read_into(impl_->file, *e, p, dst, "LoRA rank and target shapes");
}

// ---- writing ----

void save_checkpoint(Engine& engine, const ModelSpec& spec, const ModelExtras& extras, const std::optional<LoraSpec>& lora,
                     SaveKind kind, const std::string& dir, uint64_t max_shard_bytes) {
  if (kind != SaveKind::adapter &&
      (spec.activation != Activation::swiglu || spec.norm != Norm::rmsnorm ||
       spec.position_embedding != PositionEmbedding::rope || spec.bias == Bias::all))
    throw std::runtime_error("saving " + dir +
                             ": only LLaMA-shaped models (swiglu, rmsnorm, rope, no MLP biases) are written as Hugging "
                             "Face directories; GPT-shaped models are not supported yet");
  if (kind != SaveKind::full && !lora) throw std::runtime_error("saving " + dir + ": the plan has no LoRA adapter");
  const bool writer = engine.dp().rank() == 0;
  std::vector<ParamInfo> infos;
  std::vector<at::Tensor> values;  // CPU copies, compute dtype (merged: float32 until written)
  std::map<std::string, size_t> where;
  engine.visit_full([&](const ParamInfo& p, const at::Tensor& t) {
    if (!writer) return;
    const bool adapter = is_lora(p);
    if ((kind == SaveKind::adapter) != adapter) return;
    CategoryScope cat(MemCategory::other);
    where[p.name] = infos.size();
    infos.push_back(p);
    values.push_back(kind == SaveKind::merged ? t.detach().to(at::kCPU, at::kFloat).clone()
                                              : t.detach().to(at::kCPU).contiguous().clone());
  });
  if (kind == SaveKind::merged) {
    // Merge and unload (peft LoraLayer.merge): W <- W + (alpha / r) B A for each adapted projection.
    // A second pass collects the adapters (every rank takes part: ZeRO-3 gathers).
    std::map<std::string, at::Tensor> a, b;
    engine.visit_full([&](const ParamInfo& p, const at::Tensor& t) {
      if (!writer || !is_lora(p)) return;
      CategoryScope cat(MemCategory::other);
      (p.role == Role::lora_a ? a : b)[p.name] = t.detach().to(at::kCPU, at::kFloat).clone();
    });
    const double scale = lora->alpha / lora->rank;
    const std::string suffix = ".lora_A.weight";
    for (const auto& [name, ta] : a) {
      const std::string module = name.substr(0, name.size() - suffix.size());
      values.at(where.at(module + ".weight")).addmm_(b.at(module + ".lora_B.weight"), ta, 1.0, scale);
    }
    for (auto& v : values) v = v.to(engine.options().compute);
  }
  if (writer) {
    fs::create_directories(dir);
    std::vector<uint64_t> bytes;
    std::vector<std::string> names;
    uint64_t total = 0;
    for (size_t i = 0; i < infos.size(); ++i) {
      names.push_back(kind == SaveKind::adapter ? peft_name(infos[i].name) : infos[i].name);
      bytes.push_back(static_cast<uint64_t>(values[i].nbytes()));
      total += bytes.back();
    }
    const bool adapter = kind == SaveKind::adapter;
    const ShardPlan plan = adapter ? plan_shards(bytes, UINT64_MAX) : plan_shards(bytes, max_shard_bytes);
    for (size_t s = 0; s < plan.files.size(); ++s) {
      std::vector<TensorView> views;
      for (size_t i = 0; i < infos.size(); ++i)
        if (plan.shard_of[i] == static_cast<int>(s))
          views.push_back({names[i], file_type(values[i].scalar_type()), infos[i].shape, values[i].data_ptr()});
      const std::string file = adapter ? "adapter_model.safetensors" : plan.files[s];
      write_safetensors((fs::path(dir) / file).string(), views, {{"format", "pt"}});
    }
    if (plan.indexed) std::ofstream(fs::path(dir) / "model.safetensors.index.json") << shard_index(plan, names, total).dump(2);
    const std::string dtype = engine.options().compute == at::kBFloat16 ? "bfloat16" : "float32";
    if (adapter) {
      nlohmann::json targets = nlohmann::json::array();
      for (unsigned i = 0; i < 7; ++i)
        if (lora->targets & (1u << i)) targets.push_back(kLoraTargetNames[i]);
      const nlohmann::json cfg = {{"peft_type", "LORA"}, {"task_type", "CAUSAL_LM"}, {"r", lora->rank},
                                  {"lora_alpha", lora->alpha}, {"lora_dropout", lora->dropout},
                                  {"target_modules", targets}, {"bias", "none"}, {"fan_in_fan_out", false},
                                  {"inference_mode", true}, {"base_model_name_or_path", spec.name}};
      std::ofstream(fs::path(dir) / "adapter_config.json") << cfg.dump(2);
    } else {
      std::ofstream(fs::path(dir) / "config.json") << hf_config_for(spec, extras, dtype).dump(2);
    }
  }
  engine.dp().barrier();
}

}  // namespace paraplan::exec

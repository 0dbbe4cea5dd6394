#include "checkpoint.hpp"

#include <ATen/Parallel.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "paraplan/exec/hf_dir.hpp"
#include "splitmix.hpp"
#include "paraplan/exec/memory_meter.hpp"

namespace paraplan::exec {

namespace fs = std::filesystem;
using namespace planner;

namespace {

uint64_t mix(uint64_t z) { return splitmix64(z); }

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

// One tensor of `file` on the CPU, in the file's dtype.
at::Tensor read_entry(const SafetensorsFile& file, const TensorEntry& e) {
  CategoryScope cat(MemCategory::other);
  at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(torch_type(e.dtype, file.path() + ": tensor " + e.name)));
  file.read(e, t.data_ptr());
  return t;
}

// Reads one tensor of `file` into dst (float32, the parameter's shape), converting the dtype.
void read_into(const SafetensorsFile& file, const TensorEntry& e, const ParamInfo& p, at::Tensor& dst,
               const std::string& model_note) {
  if (e.shape != p.shape)
    throw FormatError(file.path() + ": tensor " + e.name + " has shape " + shape_str(e.shape) +
                      " but the model needs " + shape_str(p.shape) + " (" + model_note + ")");
  dst.copy_(read_entry(file, e));
}

// GPT-2 checkpoints are saved from GPT2LMHeadModel ("transformer.h.0...") or GPT2Model ("h.0...").
const TensorEntry* find_gpt2(const HfWeights& w, const std::string& name, const SafetensorsFile** f) {
  const TensorEntry* e = w.find(name, f);
  return e ? e : w.find("transformer." + name, f);
}

std::string strip_transformer(const std::string& n) { return n.rfind("transformer.", 0) == 0 ? n.substr(12) : n; }

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
  // A tensor-parallel slice draws its elements at their indices in the whole tensor (rows past it are
  // vocabulary padding: zero), so every layout holds the same values as one rank would.
  const std::vector<int64_t>& full = p.full_shape.empty() ? p.shape : p.full_shape;
  const int64_t cols = full.size() > 1 ? full[1] : 1, local_cols = p.shape.size() > 1 ? p.shape[1] : 1;
  auto global = [&](int64_t i) -> int64_t {  // -1: padding
    if (p.shard_dim < 0) return i;
    int64_t r = i / local_cols, c = i % local_cols;
    if (p.shard_dim == 0) r += p.shard_start;
    else c += p.shard_start;
    return r < full[0] && c < cols ? r * cols + c : -1;
  };
  if (p.role == Role::lora_a) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(cols));
    at::parallel_for(0, cpu.numel(), 1 << 14, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const int64_t g = global(i);
        out[i] = g < 0 ? 0.0f : static_cast<float>((2 * uniform01(base + static_cast<uint64_t>(g)) - 1) * bound);
      }
    });
  } else {
    // Box-Muller (1958) from two uniforms per element.
    at::parallel_for(0, cpu.numel(), 1 << 14, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const int64_t g = global(i);
        if (g < 0) {
          out[i] = 0.0f;
          continue;
        }
        const uint64_t k = static_cast<uint64_t>(g);
        const double u1 = uniform01(base + 2 * k), u2 = uniform01(base + 2 * k + 1);
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
  bool gpt2;
  Impl(const std::string& dir, const ModelSpec& m)
      : weights(dir), note("model: " + model_dims(m)), gpt2(is_gpt2_shape(m)) {}
};

CheckpointReader::CheckpointReader(const std::string& dir, const ModelSpec& spec)
    : impl_(std::make_unique<Impl>(dir, spec)) {
  // A family whose tensors would load but not run as transformers runs them: the directory's config.json,
  // and the plan's own (model.hf_config) for a directory without one.
  check_trainer_runs_family(dir);
  std::error_code same_error;
  if (!spec.hf_config.empty() && !fs::equivalent(spec.hf_config, fs::path(dir) / "config.json", same_error))
    check_trainer_runs_config(spec.hf_config);
  // Tensors the model does not have mean the directory is for another model.
  const ModelLayout layout = model_layout(spec, std::nullopt);
  std::set<std::string> gpt2_names;
  if (impl_->gpt2)
    for (const auto& u : layout.units)
      for (const auto& p : u.params) gpt2_names.insert(gpt2_source(p.name).name);
  for (const std::string& name : impl_->weights.names()) {
    if (impl_->gpt2 ? gpt2_names.count(strip_transformer(name)) > 0 : layout.find(name) != nullptr) continue;
    // GPT-2's attention mask buffers.
    if (impl_->gpt2 && (name.find(".attn.bias") != std::string::npos || name.find(".attn.masked_bias") != std::string::npos))
      continue;
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
  if (impl_->gpt2) {
    const Gpt2Source src = gpt2_source(p.name);
    const TensorEntry* e = find_gpt2(impl_->weights, src.name, &f);
    if (!e)
      throw FormatError(impl_->weights.dir() + ": no tensor " + src.name + " in the checkpoint (GPT-2 layout; " +
                        impl_->note + ")");
    at::Tensor t = read_entry(*f, *e);
    const int64_t last = t.dim() - 1, width = e->shape.back() / src.parts;
    if (e->shape.back() % src.parts == 0) t = t.narrow(last, src.part * width, width);
    if (src.transpose) t = t.t();
    if (t.sizes().vec() != p.shape || e->shape.back() % src.parts != 0)
      throw FormatError(f->path() + ": tensor " + e->name + " has shape " + shape_str(e->shape) + ", but " + p.name +
                        " (part " + std::to_string(src.part + 1) + " of " + std::to_string(src.parts) +
                        (src.transpose ? ", transposed" : "") + ") must be " + shape_str(p.shape) + " (" +
                        impl_->note + ")");
    dst.copy_(t);
    return;
  }
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

void save_checkpoint(const std::vector<ParamInfo>& params, const std::vector<at::Tensor>& gathered,
                     const ModelSpec& spec, const ModelExtras& extras, const std::optional<LoraSpec>& lora,
                     SaveKind kind, const std::string& dir, uint64_t max_shard_bytes, at::ScalarType compute) {
  const bool gpt2 = is_gpt2_shape(spec);
  const bool llama = spec.activation == Activation::swiglu && spec.norm == Norm::rmsnorm &&
                     spec.position_embedding == PositionEmbedding::rope && spec.bias != Bias::all;
  if (kind != SaveKind::adapter && !gpt2 && !llama)
    throw std::runtime_error("saving " + dir +
                             ": Hugging Face directories hold LLaMA-shaped models (swiglu, rmsnorm, rope, no MLP "
                             "biases) or GPT-2-shaped ones (gelu, layernorm, biases, learned positions, tied, "
                             "kv_heads = heads); this model is neither");
  if (kind != SaveKind::full && !lora) throw std::runtime_error("saving " + dir + ": the plan has no LoRA adapter");
  CategoryScope cat(MemCategory::other);
  std::vector<ParamInfo> infos;
  std::vector<at::Tensor> values;  // CPU copies, compute dtype (merged: float32 until written)
  std::map<std::string, size_t> where;
  std::map<std::string, at::Tensor> a, b;  // merged: the adapters
  for (size_t i = 0; i < params.size(); ++i) {
    const ParamInfo& p = params[i];
    const at::Tensor& t = gathered[i];
    const bool adapter = is_lora(p);
    if (kind == SaveKind::merged && adapter) {
      (p.role == Role::lora_a ? a : b)[p.name] = t.detach().to(at::kCPU, at::kFloat);
      continue;
    }
    if ((kind == SaveKind::adapter) != adapter) continue;
    where[p.name] = infos.size();
    infos.push_back(p);
    values.push_back(kind == SaveKind::merged ? t.detach().to(at::kCPU, at::kFloat).clone()
                                              : t.detach().to(at::kCPU).contiguous());
  }
  if (kind == SaveKind::merged) {
    // Merge and unload (peft LoraLayer.merge): W <- W + (alpha / r) B A for each adapted projection.
    const double scale = lora->alpha / lora->rank;
    const std::string suffix = ".lora_A.weight";
    for (const auto& [name, ta] : a) {
      const std::string module = name.substr(0, name.size() - suffix.size());
      values.at(where.at(module + ".weight")).addmm_(b.at(module + ".lora_B.weight"), ta, 1.0, scale);
    }
    for (auto& v : values) v = v.to(compute);
  }
  {
    fs::create_directories(dir);
    const bool adapter = kind == SaveKind::adapter;
    std::vector<std::string> names;
    std::vector<at::Tensor> tensors;
    if (gpt2 && !adapter) {
      // GPT-2 layout: Conv1D weights [in, out], q, k, v side by side in attn.c_attn.
      std::map<std::string, std::vector<at::Tensor>> pending;
      for (size_t i = 0; i < infos.size(); ++i) {
        const Gpt2Source src = gpt2_source(infos[i].name);
        auto& parts = pending[src.name];
        if (parts.empty()) parts.resize(static_cast<size_t>(src.parts));
        parts[static_cast<size_t>(src.part)] = src.transpose ? values[i].t() : values[i];
        bool complete = true;
        for (const auto& t : parts) complete = complete && t.defined();
        if (!complete) continue;
        names.push_back(src.name);
        tensors.push_back(at::cat(parts, parts[0].dim() - 1).contiguous());
      }
    } else {
      for (size_t i = 0; i < infos.size(); ++i) {
        names.push_back(adapter ? peft_name(infos[i].name) : infos[i].name);
        tensors.push_back(values[i]);
      }
    }
    std::vector<uint64_t> bytes;
    uint64_t total = 0;
    for (const at::Tensor& t : tensors) {
      bytes.push_back(static_cast<uint64_t>(t.nbytes()));
      total += bytes.back();
    }
    const ShardPlan plan = adapter ? plan_shards(bytes, UINT64_MAX) : plan_shards(bytes, max_shard_bytes);
    for (size_t s = 0; s < plan.files.size(); ++s) {
      std::vector<TensorView> views;
      for (size_t i = 0; i < tensors.size(); ++i)
        if (plan.shard_of[i] == static_cast<int>(s))
          views.push_back({names[i], file_type(tensors[i].scalar_type()), tensors[i].sizes().vec(), tensors[i].data_ptr()});
      const std::string file = adapter ? "adapter_model.safetensors" : plan.files[s];
      write_safetensors((fs::path(dir) / file).string(), views, {{"format", "pt"}});
    }
    if (plan.indexed) std::ofstream(fs::path(dir) / "model.safetensors.index.json") << shard_index(plan, names, total).dump(2);
    const std::string dtype = compute == at::kBFloat16 ? "bfloat16" : "float32";
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
      std::ofstream(fs::path(dir) / "config.json")
          << (gpt2 ? gpt2_config_for(spec, extras, dtype) : hf_config_for(spec, extras, dtype)).dump(2);
    }
  }
}

}  // namespace paraplan::exec

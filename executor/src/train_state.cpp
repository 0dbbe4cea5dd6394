#include "train_state.hpp"

#include <map>
#include <vector>

#include "paraplan/exec/crc32.hpp"
#include "paraplan/exec/memory_meter.hpp"
#include "paraplan/exec/safetensors.hpp"
#include "paraplan/exec/train_checkpoint.hpp"

namespace paraplan::exec {

namespace {

Dtype file_dtype(at::ScalarType t) {
  if (t == at::kBFloat16) return Dtype::bf16;
  if (t == at::kHalf) return Dtype::f16;
  return Dtype::f32;
}

at::Tensor on_host(const at::Tensor& t) {
  CategoryScope cat(MemCategory::other);
  return t.device().is_cpu() ? t.contiguous() : t.to(at::kCPU).contiguous();
}

// The tensors of one rank's state, by name, as views into the engine and optimizer (writable).
std::vector<std::pair<std::string, at::Tensor>> state_tensors(ZeroEngine& engine, AdamW& optimizer) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (int u = 0; u < engine.units(); ++u) {
    const std::string p = "units." + std::to_string(u) + ".";
    const ZeroEngine::Owned o = engine.owned(u);
    const AdamW::Moments m = optimizer.owned_moments(u);
    for (const auto& [name, t] : {std::pair<const char*, at::Tensor>{"weights", o.trainable}, {"master", o.master},
                                  {"exp_avg", m.exp_avg}, {"exp_avg_sq", m.exp_avg_sq}})
      if (t.defined() && t.numel() > 0) out.emplace_back(p + name, t);
  }
  return out;
}

uint32_t frozen_crc(ZeroEngine& engine) {
  uint32_t crc = 0;
  for (int u = 0; u < engine.units(); ++u) {
    const at::Tensor h = on_host(engine.owned(u).frozen);
    crc = crc32(h.data_ptr(), h.nbytes(), crc);
  }
  return crc;
}

std::string meta(const SafetensorsFile& f, const std::string& key) {
  const auto it = f.metadata().find(key);
  if (it == f.metadata().end()) throw FormatError(f.path() + ": metadata \"" + key + "\" is missing");
  return it->second;
}

}  // namespace

void write_rank_state(const std::string& path, ZeroEngine& engine, AdamW& optimizer, int rank, int step) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> host;  // keeps device copies alive until written
  std::vector<TensorView> views;
  for (const auto& [name, t] : state_tensors(engine, optimizer)) {
    host.push_back(on_host(t));
    views.push_back({name, file_dtype(t.scalar_type()), {t.numel()}, host.back().data_ptr()});
  }
  const std::map<std::string, std::string> metadata{{"format", std::string(kCheckpointFormat) + " shard"},
                                                    {"rank", std::to_string(rank)},
                                                    {"step", std::to_string(step)},
                                                    {"optimizer_steps", std::to_string(optimizer.steps())},
                                                    {"frozen_crc32", crc32_hex(frozen_crc(engine))}};
  write_safetensors(path, views, metadata);
  sync_file(path);
}

void read_rank_state(const std::string& path, ZeroEngine& engine, AdamW& optimizer, int rank, int step) {
  at::NoGradGuard no_grad;
  const SafetensorsFile file(path);
  if (meta(file, "rank") != std::to_string(rank) || meta(file, "step") != std::to_string(step))
    throw FormatError(path + ": holds rank " + meta(file, "rank") + " at step " + meta(file, "step") +
                      ", but index.json lists it as rank " + std::to_string(rank) + " at step " + std::to_string(step));
  const std::string frozen = crc32_hex(frozen_crc(engine));
  if (meta(file, "frozen_crc32") != frozen)
    throw FormatError(path + ": the frozen base weights of this rank have CRC-32 " + frozen + ", but the run that "
                      "wrote the checkpoint trained on weights with CRC-32 " + meta(file, "frozen_crc32") +
                      ": start from the same base weights (--load, model.hf_config) as that run");
  const auto expected = state_tensors(engine, optimizer);
  if (file.tensors().size() != expected.size())
    throw FormatError(path + ": " + std::to_string(file.tensors().size()) + " tensors, but this rank's state has " +
                      std::to_string(expected.size()));
  for (const auto& [name, t] : expected) {
    const TensorEntry& e = file.at(name);
    if (e.dtype != file_dtype(t.scalar_type()) || e.numel() != t.numel())
      throw FormatError(path + ": tensor " + name + " is " + safetensors_name(e.dtype) + " with " +
                        std::to_string(e.numel()) + " elements, but this rank holds " +
                        safetensors_name(file_dtype(t.scalar_type())) + " with " + std::to_string(t.numel()));
    if (t.device().is_cpu()) {
      file.read(e, t.data_ptr());
    } else {
      CategoryScope cat(MemCategory::other);
      at::Tensor h = at::empty({t.numel()}, at::TensorOptions().dtype(t.scalar_type()));
      file.read(e, h.data_ptr());
      at::Tensor dst = t;
      dst.copy_(h);
    }
  }
  optimizer.set_steps(std::stoll(meta(file, "optimizer_steps")));
  engine.replicate_owned();
  optimizer.replicate_owned();
}

}  // namespace paraplan::exec

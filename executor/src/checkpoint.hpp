#pragma once
// Weights in and out of the engine: deterministic initialisation, Hugging Face directories (config.json
// + safetensors, sharded or not), peft adapters, and LoRA merge-and-unload.
#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <string>

#include "zero_engine.hpp"
#include "paraplan/exec/layout.hpp"
#include "paraplan/plan.hpp"

namespace paraplan::exec {

// The initial value of one parameter, a pure function of (seed, name, element): N(0, 0.02) for
// matrices (transformers' initializer_range), 1 for norm weights, 0 for biases, U(+-1/sqrt(in)) for
// LoRA A (peft: kaiming_uniform_(a=sqrt(5))) and 0 for LoRA B (Hu et al. 2021 §4.1). Writes into a
// float32 tensor of the parameter's shape; a tensor-parallel slice gets the whole tensor's values at its
// indices (layout.hpp shard_dim, shard_start).
void init_param(const ParamInfo& p, uint64_t seed, at::Tensor& dst);

// Reads the parameter from a checkpoint directory into dst (float32, its shape). FormatError naming the
// directory, file and tensor when it is missing or its shape differs from the model's.
class CheckpointReader {
 public:
  CheckpointReader(const std::string& dir, const planner::ModelSpec& spec);
  ~CheckpointReader();
  void read(const ParamInfo& p, at::Tensor& dst) const;
  bool has(const std::string& name) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A peft adapter directory (adapter_model.safetensors with base_model.model.* names).
class AdapterReader {
 public:
  explicit AdapterReader(const std::string& dir);
  ~AdapterReader();
  void read(const ParamInfo& p, at::Tensor& dst) const;  // p is a lora_a / lora_b parameter

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

enum class SaveKind { full, adapter, merged };
// Writes the whole model's parameters (gather.hpp: every tensor whole, in model order; base weights and
// adapters) as a Hugging Face directory (full, merged) or a peft adapter directory. One rank calls it.
void save_checkpoint(const std::vector<ParamInfo>& params, const std::vector<at::Tensor>& tensors,
                     const planner::ModelSpec& spec, const ModelExtras& extras,
                     const std::optional<planner::LoraSpec>& lora, SaveKind kind, const std::string& dir,
                     uint64_t max_shard_bytes, at::ScalarType compute);

}  // namespace paraplan::exec

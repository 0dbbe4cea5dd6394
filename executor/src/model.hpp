#pragma once
// The decoder, built from the plan's ModelSpec: LLaMA-style (RMSNorm, RoPE, grouped-query attention,
// SwiGLU) or GPT-shaped (LayerNorm, GeLU, biases, learned positions), with LoRA adapters where the
// plan asks. Its parameters live in the engine; the forward runs the ops of functions.hpp unit by unit,
// with a boundary between units where the engine gathers (ZeRO-3) and reduces gradients.
#include <ATen/ATen.h>

#include <map>
#include <optional>
#include <vector>

#include "zero_engine.hpp"
#include "paraplan/exec/layout.hpp"
#include "paraplan/plan.hpp"

namespace paraplan::exec {

class Model {
 public:
  Model(const planner::ModelSpec& spec, const ModelExtras& extras, const std::optional<planner::LoraSpec>& lora,
        bool flash_attention, ZeroEngine& engine);

  // Summed token cross-entropy of one micro-batch times `scale`; ids and targets are [b, s] int64.
  at::Tensor loss(const at::Tensor& ids, const at::Tensor& targets, double scale);
  // Logits [b*s, vocab] (no gradient bookkeeping), for checks and generation.
  at::Tensor logits(const at::Tensor& ids);

 private:
  struct Tables {
    at::Tensor cos, sin, mask;
  };
  Tables tables(int64_t seq_len) const;
  at::Tensor trunk(const at::Tensor& ids, const Tables& t);  // embedding + layers -> [b*s, h]
  at::Tensor layer(int unit, const at::Tensor& x, const Tables& t, int64_t b, int64_t s);
  at::Tensor head_logits(const at::Tensor& x);
  at::Tensor lin(int unit, Role w, Role b, planner::LoraTarget target, const at::Tensor& x);
  at::Tensor normed(int unit, Role w, Role b, const at::Tensor& x);
  // The parameter of a role in a unit, and its gradient slot (undefined / kNoSlot when absent).
  const at::Tensor& param(int unit, Role r) const;
  int64_t slot(int unit, Role r) const;
  int find(int unit, Role r, planner::LoraTarget target = planner::kQProj) const;

  planner::ModelSpec spec_;
  ModelExtras extras_;
  std::optional<planner::LoraSpec> lora_;
  bool flash_;
  ZeroEngine& engine_;
  int head_unit_;
  std::vector<std::map<std::pair<int, int>, int>> index_;  // per unit: (role, lora target) -> param index
};

}  // namespace paraplan::exec

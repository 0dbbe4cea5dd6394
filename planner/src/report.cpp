#include "paraplan/report.hpp"

#include <cmath>
#include <nlohmann/json.hpp>

#include "paraplan/params.hpp"
#include "paraplan/plan_io.hpp"

namespace paraplan::planner {

using nlohmann::json;

namespace {
// Bytes are whole numbers; fractions come only from averaging shards over ranks.
json bytes(double b) { return static_cast<int64_t>(std::llround(b)); }
}  // namespace

json model_report(const Plan& plan) {
  const ParamCount c = count_params(plan.model);
  const ModelParams mp = model_params(plan.model, plan.training.lora);
  return {{"name", plan.model.name},
          {"params", c.total},
          {"active_params", c.active},
          {"all_params", mp.total},  // with adapters: what peft's print_trainable_parameters calls "all params"
          {"trainable_params", mp.trainable_total},
          {"trainable_percent", 100.0 * static_cast<double>(mp.trainable_total) / static_cast<double>(mp.total)}};
}

json memory_report(const MemoryBreakdown& m) {
  json stages = json::array();
  for (const StageMemory& s : m.per_stage) {
    stages.push_back({{"stage", s.stage},
                      {"layers", s.dense_layers + s.moe_layers},
                      {"moe_layers", s.moe_layers},
                      {"embedding", s.has_embedding},
                      {"head", s.has_head},
                      {"params", s.params},
                      {"inflight_microbatches", s.inflight_microbatches},
                      {"weights_bytes", bytes(s.weights_bytes)},
                      {"gradients_bytes", bytes(s.gradients_bytes)},
                      {"master_weights_bytes", bytes(s.master_weights_bytes)},
                      {"optimizer_bytes", bytes(s.optimizer_bytes)},
                      {"activations_bytes", bytes(s.activations_bytes)},
                      {"buffers_bytes", bytes(s.buffers_bytes)},
                      {"overhead_bytes", bytes(s.overhead_bytes)},
                      {"total_bytes", bytes(s.total_bytes())},
                      {"host_bytes", bytes(s.host_bytes)},
                      {"detail",
                       {{"saved_activation_bytes", bytes(s.saved_activation_bytes)},
                        {"working_bytes", bytes(s.working_bytes)},
                        {"cuda_context_bytes", bytes(s.cuda_context_bytes)},
                        {"nccl_bytes", bytes(s.nccl_bytes)},
                        {"allocator_headroom_bytes", bytes(s.headroom_bytes)}}}});
  }
  return {{"per_stage", stages},
          {"peak_bytes", bytes(m.peak_bytes)},
          {"gpu_memory_bytes", bytes(m.gpu_memory_bytes)},
          {"fits", m.fits},
          {"worst_stage", m.worst_stage}};
}

json plan_report(const Plan& plan, const MemoryBreakdown& m) {
  return {{"plan", plan_to_json(plan)}, {"model", model_report(plan)}, {"memory", memory_report(m)}};
}

}  // namespace paraplan::planner

#include "paraplan/report.hpp"

#include <cmath>
#include <nlohmann/json.hpp>

#include "paraplan/params.hpp"
#include "paraplan/plan_io.hpp"

namespace paraplan::planner {

using nlohmann::json;

json whole_bytes(double b) {
  // 2^63 B = 8 EiB: past it (absurd batches and sequences) the count stays a JSON number, in floating point.
  if (std::fabs(b) < 9.2e18) return static_cast<int64_t>(std::llround(b));
  return std::round(b);
}

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
                      {"weights_bytes", whole_bytes(s.weights_bytes)},
                      {"gradients_bytes", whole_bytes(s.gradients_bytes)},
                      {"master_weights_bytes", whole_bytes(s.master_weights_bytes)},
                      {"optimizer_bytes", whole_bytes(s.optimizer_bytes)},
                      {"activations_bytes", whole_bytes(s.activations_bytes)},
                      {"buffers_bytes", whole_bytes(s.buffers_bytes)},
                      {"overhead_bytes", whole_bytes(s.overhead_bytes)},
                      {"total_bytes", whole_bytes(s.total_bytes())},
                      {"host_bytes", whole_bytes(s.host_bytes)},
                      {"detail",
                       {{"saved_activation_bytes", whole_bytes(s.saved_activation_bytes)},
                        {"working_bytes", whole_bytes(s.working_bytes)},
                        {"cuda_context_bytes", whole_bytes(s.cuda_context_bytes)},
                        {"nccl_bytes", whole_bytes(s.nccl_bytes)},
                        {"allocator_headroom_bytes", whole_bytes(s.headroom_bytes)},
                        {"fp8_weight_cache_bytes", whole_bytes(s.fp8_weight_cache_bytes)}}}});
  }
  return {{"per_stage", stages},
          {"peak_bytes", whole_bytes(m.peak_bytes)},
          {"gpu_memory_bytes", whole_bytes(m.gpu_memory_bytes)},
          {"fits", m.fits},
          {"worst_stage", m.worst_stage}};
}

json time_report(const StepEstimate& t) {
  json stages = json::array();
  for (const StageTime& s : t.per_stage)
    stages.push_back({{"stage", s.stage}, {"forward_s", s.fwd}, {"backward_s", s.bwd}, {"weight_grad_s", s.bwd_weight},
                      {"compute_s", s.compute}, {"exposed_comm_s", s.exposed_comm}, {"dp_comm_s", s.dp_comm},
                      {"optimizer_s", s.optimizer}});
  return {{"step_s", t.step_s},
          {"compute_s", t.compute_s},
          {"exposed_comm_s", t.exposed_comm_s},
          {"bubble_s", t.bubble_s},
          {"optimizer_s", t.optimizer_s},
          {"host_s", t.host_s},
          {"tokens_per_s", t.tokens_per_s},
          {"tflops_per_gpu", t.tflops_per_gpu},
          {"mfu", t.mfu},
          {"hfu", t.hfu},
          {"attention_flops", t.convention == AttentionFlops::causal ? "causal" : "full"},
          {"model_flops_per_step", t.flops.model},
          {"hardware_flops_per_step", t.flops.hardware},
          {"critical_stage", t.critical_stage},
          {"detail",
           {{"tp_cp_ep_exposed_s", t.tp_exposed_s},
            {"pp_p2p_s", t.pp_p2p_s},
            {"dp_exposed_s", t.dp_exposed_s},
            {"zero3_exposed_s", t.zero3_exposed_s}}},
          {"per_stage", stages}};
}

json budget_report(const Plan& plan, const StepEstimate& t, double tokens) {
  const double wall = tokens / t.tokens_per_s;
  const double gpu_hours = wall * plan.cluster.gpus / 3600;
  json j = {{"tokens", tokens}, {"wall_s", wall}, {"wall_days", wall / 86400}, {"gpu_hours", gpu_hours}};
  if (plan.cluster.price_per_gpu_hour > 0) j["cost"] = gpu_hours * plan.cluster.price_per_gpu_hour;
  return j;
}

json plan_report(const Plan& plan, const MemoryBreakdown& m, const StepEstimate& t) {
  return {{"plan", plan_to_json(plan)}, {"model", model_report(plan)}, {"memory", memory_report(m)},
          {"time", time_report(t)}};
}

}  // namespace paraplan::planner

// The rules of one plan that tie its sections together (the parallel ones are in parallel_rules.cpp).
// Each names the field, its value and the rule.
#include "paraplan/parallel_rules.hpp"
#include "paraplan/params.hpp"
#include "paraplan/plan_io.hpp"

namespace paraplan::planner {

namespace {
std::string s(long long v) { return std::to_string(v); }

// Why a model lacks a module that a LoRA target names (lora_target_modules).
std::string lora_absence_reason(const ModelSpec& m, LoraTarget t) {
  if (m.mla && (t == kKProj || t == kVProj))
    return " (multi-head latent attention has kv_a_proj_with_mqa and kv_b_proj, not k_proj/v_proj)";
  if (m.mla && t == kQProj) return " (with q_lora_rank > 0 the query is q_a_proj and q_b_proj)";
  if (t == kGateProj && m.activation == Activation::gelu) return " (a GeLU MLP has no gate projection)";
  if (m.moe) return " (routed experts are not adapted; only dense layers and shared experts have an MLP to adapt)";
  return "";
}
}  // namespace

void validate_plan(const Plan& plan, Violations& e) {
  const ModelSpec& m = plan.model;
  const TrainingSpec& t = plan.training;
  const ParallelPlan& p = plan.parallel;
  const ClusterSpec& c = plan.cluster;

  // --- degrees, schedules and the batch they split (parallel_rules.cpp) ---
  check_parallel(plan, e);

  // --- sequence ---
  if (m.position_embedding == PositionEmbedding::learned && t.seq_len > m.max_seq_len)
    e.add("training.seq_len", s(t.seq_len), "must be <= model.max_seq_len (" + s(m.max_seq_len) +
                                                "), the rows of the learned position table");

  // --- precision, optimizer, offload ---
  if (t.precision == Precision::fp32 && t.grad_dtype != GradDtype::fp32)
    e.add("training.grad_dtype", to_string(t.grad_dtype), "must be fp32 when precision is fp32");
  if (!c.gpu.is_cpu && c.gpu.peak_flops(t.precision) <= 0)
    e.add("training.precision", to_string(t.precision), c.gpu.name + " has no " + to_string(t.precision) + " support");
  if (c.gpu.is_cpu && t.precision != Precision::fp32 && t.precision != Precision::bf16)
    e.add("training.precision", to_string(t.precision), "CPU workers train in fp32 or bf16");
  if (t.cross_entropy == CrossEntropy::te && plan.framework() != Framework::megatron)
    e.add("training.cross_entropy", "te",
          std::string("requires training.framework megatron (Megatron-Core's cross_entropy_fusion_impl), not ") +
              to_string(plan.framework()));
  if (t.offload == Offload::optimizer && p.zero < 1)
    e.add("training.offload", "optimizer", "requires parallel.zero >= 1 (ZeRO-Offload moves the sharded optimizer)");
  if (t.offload == Offload::optimizer_params && p.zero != 3)
    e.add("training.offload", "optimizer+params", "requires parallel.zero = 3 (parameters are offloaded as shards)");
  if (t.lora) {
    // A target that names no module would train nothing there without a word (PEFT refuses it too).
    const unsigned present = lora_target_modules(m);
    std::string modules;
    for (size_t k = 0; k < std::size(kLoraTargetNames); ++k)
      if (present & (1u << k)) modules += (modules.empty() ? "" : ", ") + std::string(kLoraTargetNames[k]);
    for (size_t k = 0; k < std::size(kLoraTargetNames); ++k)
      if ((t.lora->targets & (1u << k)) && !(present & (1u << k)))
        e.add("training.lora.targets", std::string("\"") + kLoraTargetNames[k] + "\"",
              "matches no module of model " + m.name + "; its modules that take adapters: " + modules +
                  lora_absence_reason(m, static_cast<LoraTarget>(1u << k)));
    // Hu et al. 2021 §4.1: the update has rank <= min(in, out); a larger r adds parameters, not capacity.
    if (t.lora->rank > m.hidden)
      e.add("training.lora.rank", s(t.lora->rank), "must be <= model.hidden (" + s(m.hidden) +
                                                       "): a LoRA update's rank cannot exceed its layer's width");
    // NF4 weights are dequantised to the compute dtype for each matmul (bitsandbytes Linear4bit,
    // bnb_4bit_compute_dtype: bf16, fp16 or float32), so any training precision works with an NF4 base.
  }
}

}  // namespace paraplan::planner

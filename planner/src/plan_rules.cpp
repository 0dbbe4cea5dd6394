// The rules of one plan that tie its sections together (the parallel ones are in parallel_rules.cpp).
// Each names the field, its value and the rule.
#include "paraplan/parallel_rules.hpp"
#include "paraplan/plan_io.hpp"

namespace paraplan::planner {

namespace {
std::string s(long long v) { return std::to_string(v); }
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
  if (t.offload == Offload::optimizer && p.zero < 1)
    e.add("training.offload", "optimizer", "requires parallel.zero >= 1 (ZeRO-Offload moves the sharded optimizer)");
  if (t.offload == Offload::optimizer_params && p.zero != 3)
    e.add("training.offload", "optimizer+params", "requires parallel.zero = 3 (parameters are offloaded as shards)");
  if (t.lora) {
    const unsigned qkv = kQProj | kKProj | kVProj;
    if (m.mla && (t.lora->targets & qkv))
      e.add("training.lora.targets", "q_proj/k_proj/v_proj",
            "are not single matrices under multi-head latent attention; use o_proj and the MLP projections");
    // NF4 weights are dequantised to the compute dtype for each matmul (bitsandbytes Linear4bit,
    // bnb_4bit_compute_dtype: bf16, fp16 or float32), so any training precision works with an NF4 base.
    if (m.activation == Activation::gelu && (t.lora->targets & kGateProj))
      e.add("training.lora.targets", "gate_proj", "the model has no gate projection (activation is gelu)");
  }
}

}  // namespace paraplan::planner

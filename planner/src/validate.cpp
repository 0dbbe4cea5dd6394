// Rules that tie the plan's sections together. Each names the field, its value and the rule.
#include <fmt/format.h>

#include <numeric>

#include "paraplan/plan_io.hpp"
#include "paraplan/pipeline.hpp"
#include "paraplan/training.hpp"

namespace paraplan::planner {

namespace {
std::string s(long long v) { return std::to_string(v); }

// Why a model lacks a module that a LoRA target names (model.cpp lora_target_modules).
std::string lora_absence_reason(const ModelSpec& m, LoraTarget t) {
  if (m.mla && (t == kKProj || t == kVProj))
    return " (multi-head latent attention has kv_a_proj_with_mqa and kv_b_proj, not k_proj/v_proj)";
  if (m.mla && t == kQProj) return " (with q_lora_rank > 0 the query is q_a_proj and q_b_proj)";
  if (t == kGateProj && m.activation == Activation::gelu) return " (a GeLU MLP has no gate projection)";
  if (m.moe) return " (routed experts are not adapted; only dense layers and shared experts have an MLP to adapt)";
  return "";
}
}  // namespace

void validate_cluster_size(const ClusterSpec& c, Violations& e) {
  if (c.gpus > c.gpus_per_node && c.gpus % c.gpus_per_node != 0)
    e.add("cluster.gpus", s(c.gpus), "must be a multiple of gpus_per_node (" + s(c.gpus_per_node) +
                                         ") when it spans more than one node");
}

void validate_plan(const Plan& plan, Violations& e) {
  const ModelSpec& m = plan.model;
  const TrainingSpec& t = plan.training;
  const ParallelPlan& p = plan.parallel;
  const ClusterSpec& c = plan.cluster;

  // --- degrees and the cluster ---
  // In double: each degree may be up to limits::kDegree, and their product would overflow 64 bits.
  const double world = static_cast<double>(p.dp) * p.tp * p.pp * p.cp;
  if (world != c.gpus)
    e.add("cluster.gpus", s(c.gpus),
          "must equal dp*tp*pp*cp = " + s(p.dp) + "*" + s(p.tp) + "*" + s(p.pp) + "*" + s(p.cp) + " = " +
              fmt::format("{:.0f}", world));
  validate_cluster_size(c, e);

  // --- tensor parallelism ---
  if (m.heads % p.tp != 0)
    e.add("parallel.tp", s(p.tp), "must divide model.heads (" + s(m.heads) + "): TP splits attention by heads");
  if (!m.mla && m.kv_heads % p.tp != 0)
    e.add("parallel.tp", s(p.tp),
          "must divide model.kv_heads (" + s(m.kv_heads) + "): TP splits key/value heads (Megatron num_query_groups)");
  if (m.ffn_hidden % p.tp != 0)
    e.add("parallel.tp", s(p.tp), "must divide model.ffn_hidden (" + s(m.ffn_hidden) + ")");
  if (m.moe && m.moe->ffn_hidden % p.tp != 0)
    e.add("parallel.tp", s(p.tp), "must divide model.moe.ffn_hidden (" + s(m.moe->ffn_hidden) + ")");
  if (p.sequence_parallel && p.tp == 1)
    e.add("parallel.sequence_parallel", "true", "requires tp > 1 (it shards the TP-replicated activations over tp)");
  if (p.sequence_parallel && t.seq_len / p.cp % p.tp != 0)
    e.add("training.seq_len", s(t.seq_len), "must be divisible by cp*tp (" + s(static_cast<long long>(p.cp) * p.tp) +
                                                ") with sequence parallelism");

  // --- context parallelism ---
  if (p.cp > 1 && t.seq_len % (2 * p.cp) != 0)
    e.add("parallel.cp", s(p.cp), "2*cp must divide training.seq_len (" + s(t.seq_len) +
                                      "): causal CP splits the sequence into 2*cp balanced chunks");
  if (p.cp > 1 && m.sliding_window > 0 && m.sliding_window < t.seq_len)
    e.add("parallel.cp", s(p.cp), "must be 1 with a sliding window shorter than training.seq_len (model.sliding_window = " +
                                      s(m.sliding_window) + "): ring attention over a window is not modelled");
  if (p.cp > 1 && !t.flash_attention)
    e.add("parallel.cp", s(p.cp), "requires training.flash_attention = true (ring attention runs on flash kernels)");

  // --- experts ---
  if (p.ep > 1 && !m.moe)
    e.add("parallel.ep", s(p.ep), "requires a mixture-of-experts model (model.moe)");
  if (m.moe && m.moe->experts % p.ep != 0)
    e.add("parallel.ep", s(p.ep), "must divide model.moe.experts (" + s(m.moe->experts) + ")");
  if (p.ep > 1 && (static_cast<long long>(p.dp) * p.cp) % p.ep != 0)
    e.add("parallel.ep", s(p.ep), "must divide dp*cp (" + s(static_cast<long long>(p.dp) * p.cp) +
                                      "): expert-parallel ranks are taken from the data/context-parallel ranks");

  // --- pipeline ---
  const long long chunks = static_cast<long long>(p.pp) * p.virtual_stages;
  if (m.layers < chunks)
    e.add("parallel.pp", s(p.pp), "pp*virtual_stages (" + s(chunks) +
                                      ") must be <= model.layers (" + s(m.layers) + "): every model chunk needs a layer");
  using PS = PipelineSchedule;
  if (p.virtual_stages > 1 && p.pp_schedule != PS::interleaved && p.pp_schedule != PS::zbv)
    e.add("parallel.virtual_stages", s(p.virtual_stages),
          "must be 1 unless pp_schedule is interleaved or zbv (schedule is " + std::string(to_string(p.pp_schedule)) + ")");
  if ((p.pp_schedule == PS::interleaved || p.pp_schedule == PS::zb_h1 || p.pp_schedule == PS::zbv) && p.pp == 1)
    e.add("parallel.pp_schedule", to_string(p.pp_schedule), "needs pp > 1");
  if (p.pp_schedule == PS::interleaved && p.virtual_stages < 2)
    e.add("parallel.virtual_stages", s(p.virtual_stages), "must be >= 2 for the interleaved schedule (v = 1 is 1f1b)");
  if (p.pp_schedule == PS::zbv && p.virtual_stages != 2)
    e.add("parallel.virtual_stages", s(p.virtual_stages), "must be 2 for zbv (two chunks per stage in a V)");
  if (!p.layer_split.empty()) {
    if (static_cast<long long>(p.layer_split.size()) != chunks)
      e.add("parallel.layer_split", s(static_cast<long long>(p.layer_split.size())) + " entries",
            "must have pp*virtual_stages = " + s(chunks) + " entries (layers per model chunk)");
    const long long sum = std::accumulate(p.layer_split.begin(), p.layer_split.end(), 0LL);
    if (sum != m.layers)
      e.add("parallel.layer_split", "sum " + s(sum), "must add up to model.layers (" + s(m.layers) + ")");
  }

  // --- batch ---
  const long long per_step = static_cast<long long>(p.dp) * t.micro_batch;
  if (t.global_batch % per_step != 0)
    e.add("training.global_batch", s(t.global_batch),
          "must be divisible by dp*micro_batch = " + s(p.dp) + "*" + s(t.micro_batch) + " = " + s(per_step));
  else if (p.pp_schedule == PS::interleaved && p.pp > 1 && (t.global_batch / per_step) % p.pp != 0)
    e.add("training.global_batch", s(t.global_batch),
          "gives " + s(t.global_batch / per_step) + " micro-batches; the interleaved schedule needs a multiple of pp (" +
              s(p.pp) + ")");
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
    if (t.lora->base == LoraBase::nf4 && t.precision == Precision::fp32)
      e.add("training.lora.base", "nf4", "QLoRA computes in 16 bits: set training.precision to bf16 or fp16");
  }
}

}  // namespace paraplan::planner

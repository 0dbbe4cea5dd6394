// Megatron-Bridge 25.11's published pre-training throughput (NVIDIA-NeMo/Megatron-Bridge
// docs/performance-summary-archive.md @ 067f987df, "## 25.11 NeMo Container"; data/validation/
// megatron-bridge-25.11.csv) as plans: one source per system, mbridge-h100, mbridge-b200 and
// mbridge-gb200, so that the H100 rows can be fitted and held out on their own. The settings the table
// does not give come from the performance scripts of the Megatron-Bridge release in that container
// (v0.2.0, 7af9601c9; scripts/performance/configs and src/megatron/bridge/recipes; the file's header cites
// each): Megatron-Core with Transformer Engine, distributed optimizer (ZeRO-1) or Megatron-FSDP (the FSDP
// column, ZeRO-3), gradient reduce-scatter and parameter all-gather overlapped with compute, bf16
// gradients, sequence parallel when tp > 1, flash attention, no dropout, 8 GPUs per DGX node (GB200: the
// part of an NVL72 rack the job holds). Every system's rows are predicted with the profile fitted on the
// H100 rows (mbridge-h100). Rows of a later release (data/validation/megatron-bridge-26.04.csv, its release
// column) form sources of their own, e.g. mbridge-h100-26.04, in no fit: predictions by that profile.
#include <cctype>
#include <cmath>

#include "paraplan/csv_row.hpp"
#include "paraplan/calibration.hpp"
#include "paraplan/limits.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/presets.hpp"
#include "paraplan/validation.hpp"

namespace paraplan::planner {

namespace {

using csv::Row;

struct System {
  const char* name;    // the table's "System"
  const char* source;  // the validate source its rows form
  const char* gpu;     // hardware preset
};
// The release whose rows the mbridge-h100 profile is fitted on (scripts/calibrate-profiles imports its file
// alone); a table without a release column is of it.
constexpr const char* kFittedRelease = "25.11";

constexpr System kSystems[] = {{"DGX-H100", "mbridge-h100", "h100-sxm-80gb"},
                               {"DGX-B200", "mbridge-b200", "b200"},
                               {"DGX-GB200", "mbridge-gb200", "gb200"}};

// A NeMo container release as the summary names it: YY.MM.
bool is_release(const std::string& s) {
  auto digit = [&](size_t i) { return std::isdigit(static_cast<unsigned char>(s[i])) != 0; };
  return s.size() == 5 && digit(0) && digit(1) && s[2] == '.' && digit(3) && digit(4);
}

// account_for_embedding_in_pipeline_split + account_for_loss_in_pipeline_split (Megatron-Core
// transformer_config.py): the embedding and the loss count as one layer each, (layers + 2) / chunks per
// chunk, so the first and the last chunk hold one transformer layer fewer.
std::vector<int> embedding_loss_split(int layers, int chunks, Row& row) {
  if ((layers + 2) % chunks != 0 || (layers + 2) / chunks < 2) {
    row.errors.add(row.field("pipeline_split"), "embedding+loss",
                   "needs (layers + 2) = " + std::to_string(layers + 2) + " divisible by pp x vp = " +
                       std::to_string(chunks) + " with at least 2 per chunk");
    return {};
  }
  std::vector<int> split(chunks, (layers + 2) / chunks);
  split.front() -= 1;
  split.back() -= 1;
  return split;
}

PublishedRun read_mbridge_run(Row& row) {
  PublishedRun r;
  const System* sys = nullptr;
  for (const System& s : kSystems)
    if (row.text("system") == s.name) sys = &s;
  if (!sys) {
    std::string names;
    for (const System& s : kSystems) names += (names.empty() ? "" : ", ") + std::string(s.name);
    row.errors.add(row.field("system"), row.text("system"), "must be one of " + names);
    return r;
  }
  r.source = sys->source;
  if (row.has("release")) {
    const std::string release = row.text("release");
    const bool valid = is_release(release);
    if (!valid) row.errors.add(row.field("release"), release, "must be a NeMo container release YY.MM, e.g. 26.04");
    if (valid && release != kFittedRelease) {
      r.source += "-" + release;
      r.in_no_fit = true;
    }
  }
  r.model = row.text("model");
  Plan& p = r.plan;
  try {
    p.model = model_preset(r.model, row.field("model"));
    p.cluster.gpu = hardware_preset(sys->gpu);
  } catch (const PlanError& e) {
    for (const auto& v : e.violations()) row.errors.add(v.field, v.value, v.rule);
    return r;
  }
  TrainingSpec& t = p.training;
  t.framework = Framework::megatron;
  t.seq_len = row.integer("seq", 1, 1, limits::kSeqLen);
  t.micro_batch = static_cast<int>(row.integer("micro_batch", 1, 1, limits::kDegree));
  t.global_batch = row.integer("global_batch", 1, 1, limits::kGlobalBatch);
  t.precision = row.choice("precision", Precision::bf16,
                           {{"BF16", Precision::bf16}, {"FP8", Precision::fp8}, {"FP8-CS", Precision::fp8}, {"FP8-MX", Precision::fp8}});
  t.grad_dtype = GradDtype::bf16;  // grad_reduce_in_fp32 = False in every performance config
  t.recompute = row.choice("recompute", Recompute::none,
                           {{"none", Recompute::none}, {"selective", Recompute::selective}, {"full", Recompute::full}});
  t.flash_attention = true;
  t.dropout = 0;
  // Transformer Engine's fused cross entropy: GPTModelProvider cross_entropy_loss_fusion = True, and the
  // performance scripts set cross_entropy_fusion_impl = "te" (scripts/performance/utils/helpers.py @ v0.2.0).
  t.cross_entropy = CrossEntropy::te;
  ParallelPlan& par = p.parallel;
  par.tp = static_cast<int>(row.integer("tp", 1, 1, limits::kDegree));
  par.pp = static_cast<int>(row.integer("pp", 1, 1, limits::kDegree));
  par.cp = static_cast<int>(row.integer("cp", 1, 1, limits::kDegree));
  // EP "n/a": a dense model (the 26.04 tables), one expert-parallel rank.
  par.ep = row.text("ep") == "n/a" ? 1 : static_cast<int>(row.integer("ep", 1, 1, limits::kDegree));
  if (row.has("plan_ep")) par.ep = static_cast<int>(row.integer("plan_ep", 1, 1, limits::kDegree));
  // VP "n/a" (no pipeline) or 1: one model chunk per rank.
  par.virtual_stages = row.text("vp") == "n/a" ? 1 : static_cast<int>(row.integer("vp", 1, 1, limits::kDegree));
  par.pp_schedule = par.virtual_stages > 1 ? PipelineSchedule::interleaved : PipelineSchedule::one_f_one_b;
  p.cluster.gpus = static_cast<int>(row.integer("gpus", 1, 1, limits::kGpus));
  const long long model_ranks = static_cast<long long>(par.tp) * par.pp * par.cp;
  if (p.cluster.gpus % model_ranks != 0)
    row.errors.add(row.field("gpus"), row.text("gpus"),
                   "must be a multiple of tp x pp x cp (" + std::to_string(model_ranks) + ")");
  par.dp = static_cast<int>(std::max(1LL, p.cluster.gpus / model_ranks));
  // FSDP column: 0, or the Megatron-FSDP sharding group, which is the data-parallel group (x cp).
  const int64_t fsdp = row.integer("fsdp", 0, 0, limits::kGpus);
  if (fsdp > 0 && fsdp != static_cast<int64_t>(par.dp) * par.cp)
    row.errors.add(row.field("fsdp"), row.text("fsdp"),
                   "must be 0 or dp x cp (" + std::to_string(par.dp * par.cp) + "): Megatron-FSDP shards over it");
  par.zero = fsdp > 0 ? 3 : 1;  // use_megatron_fsdp, else use_distributed_optimizer (ZeRO-1)
  par.sequence_parallel = par.tp > 1;
  par.tp_comm_overlap = row.choice("tp_comm_overlap", false, {{"false", false}, {"true", true}});
  if (row.has("ep_comm_overlap"))  // the recipe's moe_a2a_overlap
    par.ep_comm_overlap = row.choice("ep_comm_overlap", false, {{"false", false}, {"true", true}});
  par.dp_overlap = true;  // overlap_grad_reduce and overlap_param_gather
  const std::string split = row.text("pipeline_split");
  if (split == "embedding+loss")
    par.layer_split = embedding_loss_split(p.model.layers, par.chunks(), row);
  else if (split != "even")
    row.errors.add(row.field("pipeline_split"), split, "must be one of even, embedding+loss");
  // The GPUs of one NVLink domain the job holds: a DGX node of 8; on GB200 NVL72 racks, the performance
  // scripts' 4 ranks per Slurm node (one tray) and --segment beyond one rack (default_gpus_per_node).
  p.cluster.gpus_per_node = default_gpus_per_node(p.cluster.gpu, p.cluster.gpus);
  // The GEMM efficiency fitted on the H100 rows (data/calibration/mbridge-h100.json, docs/validation.md);
  // on the B200 and GB200 rows, which it did not see, a prediction across devices.
  p.cluster.calibration = builtin_calibration("mbridge-h100");
  const double tokens_per_s_per_gpu = row.positive("tokens_per_s_per_gpu");
  if (tokens_per_s_per_gpu <= 0) row.errors.add(row.field("tokens_per_s_per_gpu"), "", "is required");
  r.published_tflops_per_gpu = row.positive("model_tflops_per_gpu");
  // Step time = the tokens of one global batch / the throughput of all GPUs.
  if (tokens_per_s_per_gpu > 0)
    r.published_step_s = static_cast<double>(t.global_batch) * static_cast<double>(t.seq_len) /
                         (tokens_per_s_per_gpu * p.cluster.gpus);
  row.check_plan(p);
  return r;
}

}  // namespace

std::vector<PublishedRun> mbridge_runs_from_csv(const std::string& text, const std::string& origin) {
  return csv::read_runs(text, origin,
                        {"system", "model", "gpus", "precision", "global_batch", "micro_batch", "seq", "fsdp", "tp", "pp",
                         "cp", "vp", "ep", "tokens_per_s_per_gpu", "recompute", "pipeline_split", "tp_comm_overlap"},
                        read_mbridge_run);
}

std::vector<PublishedRun> mbridge_runs() {
  return mbridge_runs_from_csv(csv::compiled_in("megatron-bridge-25.11"), "data/validation/megatron-bridge-25.11.csv");
}

std::vector<PublishedRun> mbridge_held_out_runs() {
  return mbridge_runs_from_csv(csv::compiled_in("megatron-bridge-26.04"), "data/validation/megatron-bridge-26.04.csv");
}

}  // namespace paraplan::planner

// Megatron-Bridge 25.11's published throughput as plans (mbridge_runs_from_csv): each row's plan, the
// step time derived from tokens/s/GPU, every cell checked with "<file>:<line>: <column>", the compiled-in
// table's rows, the leave-one-row-out fit, and the model presets its rows use.
#include <gtest/gtest.h>

#include <map>

#include "paraplan/calibration.hpp"
#include "paraplan/held_out.hpp"
#include "paraplan/memory.hpp"
#include "paraplan/params.hpp"
#include "paraplan/presets.hpp"
#include "paraplan/validation.hpp"
#include "csv_cells.hpp"
#include "plan_errors.hpp"

using namespace paraplan::planner;

namespace {

const char* kHeader =
    "system,model,published_model,gpus,precision,global_batch,micro_batch,seq,fsdp,tp,pp,cp,vp,ep,ga,"
    "tokens_per_s_per_gpu,model_tflops_per_gpu,recompute,pipeline_split,tp_comm_overlap,plan_ep\n";
// The DGX-H100 LLAMA3_70B row of the 25.11 table (docs/performance-summary-archive.md @ 067f987df).
const char* kRow = "DGX-H100,llama3-70b,LLAMA3_70B,64,FP8-CS,128,1,8192,0,4,8,1,5,1,64,1602,719,none,even,true,\n";

std::vector<std::string> errors_of(const std::string& table) {
  return plantest::csv_errors(&mbridge_runs_from_csv, table, "m.csv");
}

// kRow with cell `col` (0-based) replaced.
std::string row_with(size_t col, const std::string& value) { return plantest::row_with_cell(kHeader, kRow, col, value); }

}  // namespace

// By hand: 64 GPUs / (tp 4 x pp 8 x cp 1) = dp 2; step = 128 x 8192 tokens / (1602 tokens/s/GPU x 64 GPUs)
// = 1,048,576 / 102,528 = 10.2272 s.
TEST(MBridge, ReadsAHandWrittenRow) {
  const auto runs = mbridge_runs_from_csv(std::string("# comment\n") + kHeader + kRow, "m.csv");
  ASSERT_EQ(runs.size(), 1u);
  const PublishedRun& r = runs[0];
  EXPECT_EQ(r.source, "mbridge-h100");
  EXPECT_EQ(r.line, 3);
  EXPECT_NEAR(r.published_step_s, 10.2272, 1e-4);
  EXPECT_DOUBLE_EQ(r.published_tflops_per_gpu, 719);
  const Plan& p = r.plan;
  EXPECT_EQ(p.cluster.gpu.id, "h100-sxm-80gb");
  EXPECT_EQ(p.cluster.gpus_per_node, 8);
  EXPECT_EQ(p.parallel.dp, 2);
  EXPECT_EQ(p.parallel.tp, 4);
  EXPECT_EQ(p.parallel.pp, 8);
  EXPECT_EQ(p.parallel.virtual_stages, 5);
  EXPECT_EQ(p.parallel.pp_schedule, PipelineSchedule::interleaved);
  EXPECT_TRUE(p.parallel.sequence_parallel);  // tp > 1
  EXPECT_TRUE(p.parallel.tp_comm_overlap);
  EXPECT_EQ(p.parallel.zero, 1);  // distributed optimizer
  EXPECT_TRUE(p.parallel.layer_split.empty());
  EXPECT_EQ(p.training.precision, Precision::fp8);
  EXPECT_EQ(p.training.grad_dtype, GradDtype::bf16);
  EXPECT_EQ(p.training.framework, Framework::megatron);
  EXPECT_EQ(p.cluster.calibration.name, "mbridge-h100");
}

// The FSDP column makes the plan ZeRO-3; "embedding+loss" gives the first and last of pp x vp chunks one
// layer fewer: LLaMA 3.1 405B, 126 layers + 2 over 8 x 8 = 64 chunks = 2 each, so 1, 2, ..., 2, 1.
// plan_ep replaces ep in the plan.
TEST(MBridge, FsdpSplitAndPlanEp) {
  const std::string table = std::string(kHeader) +
                            "DGX-H100,llama3-8b,LLAMA3_8B,8,FP8-CS,128,1,8192,8,1,1,1,n/a,1,16,14451,744,none,even,false,\n"
                            "DGX-H100,llama3-405b,LLAMA3.1_405B,1024,FP8-CS,512,1,8192,0,8,8,2,8,1,64,292,737,none,"
                            "embedding+loss,true,\n"
                            "DGX-B200,qwen3-30b-a3b,Qwen3_30B_a3B,8,FP8-MX,512,1,4096,0,1,1,1,1,8,64,9299,214,none,"
                            "even,false,4\n";
  const auto runs = mbridge_runs_from_csv(table, "m.csv");
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].plan.parallel.zero, 3);
  EXPECT_EQ(runs[0].plan.parallel.virtual_stages, 1);  // "n/a"
  const std::vector<int>& split = runs[1].plan.parallel.layer_split;
  ASSERT_EQ(split.size(), 64u);
  EXPECT_EQ(split.front(), 1);
  EXPECT_EQ(split[1], 2);
  EXPECT_EQ(split.back(), 1);
  EXPECT_EQ(runs[1].plan.parallel.dp, 8);  // 1024 / (8 x 8 x 2)
  EXPECT_EQ(runs[2].source, "mbridge-b200");
  EXPECT_EQ(runs[2].plan.cluster.gpu.id, "b200");
  EXPECT_EQ(runs[2].plan.parallel.ep, 4);
  // 512 x 4096 / (9299 x 8) = 2,097,152 / 74,392 = 28.1906 s
  EXPECT_NEAR(runs[2].published_step_s, 28.1906, 1e-4);
}

TEST(MBridge, EveryCellIsChecked) {
  using plantest::mentions;
  EXPECT_TRUE(mentions(errors_of(row_with(9, "x")), "m.csv:2: tp = x: must be an integer"));
  EXPECT_TRUE(mentions(errors_of(row_with(0, "DGX-A100")), "m.csv:2: system = DGX-A100: must be one of DGX-H100, DGX-B200, DGX-GB200"));
  EXPECT_TRUE(mentions(errors_of(row_with(4, "FP4")), "m.csv:2: precision = FP4: must be one of BF16, FP8, FP8-CS, FP8-MX"));
  EXPECT_TRUE(mentions(errors_of(row_with(15, "0")), "m.csv:2: tokens_per_s_per_gpu = 0: must be a number > 0"));
  EXPECT_TRUE(mentions(errors_of(row_with(1, "llama9")), "m.csv:2: model = \"llama9\": is not a preset"));
  EXPECT_TRUE(mentions(errors_of(row_with(8, "4")), "m.csv:2: fsdp = 4: must be 0 or dp x cp (2)"));
  EXPECT_TRUE(mentions(errors_of(row_with(3, "60")), "m.csv:2: gpus = 60: must be a multiple of tp x pp x cp (32)"));
  // 80 + 2 layers do not divide into 8 x 5 = 40 chunks.
  EXPECT_TRUE(mentions(errors_of(row_with(18, "embedding+loss")), "m.csv:2: pipeline_split = embedding+loss: needs"));
  EXPECT_TRUE(mentions(errors_of(row_with(18, "odd")), "m.csv:2: pipeline_split = odd: must be one of even, embedding+loss"));
  // The plan's own rules, named with the row: llama3-70b is dense, so ep 2 is refused.
  EXPECT_TRUE(mentions(errors_of(row_with(13, "2")), "m.csv:2: parallel.ep = 2: requires a mixture-of-experts model"));
  const std::string no_tokens = std::string("system,model,gpus\n") + "DGX-H100,llama3-8b,8\n";
  EXPECT_TRUE(mentions(errors_of(no_tokens), "m.csv:1: the header has no column \"tokens_per_s_per_gpu\""));
}

// The compiled-in table: the 25.11 section's 6 DGX-H100 rows, 5 of its 6 DGX-B200 rows (DeepSeek-V3
// with MTP left out) and 4 of its 8 DGX-GB200 rows (the two LLaMA 3 rows that need activation offloading and
// the two DeepSeek-V3 rows left out; see the file's header). First H100 row, LLAMA3_8B: 128 x 8192 / (14451 x 8) = 1,048,576 / 115,608 = 9.07010 s.
TEST(MBridge, TheTableHasFifteenRows) {
  const auto runs = mbridge_runs();
  ASSERT_EQ(runs.size(), 15u);
  std::map<std::string, int> per_source;
  for (const auto& r : runs) per_source[r.source]++;
  EXPECT_EQ(per_source["mbridge-h100"], 6);
  EXPECT_EQ(per_source["mbridge-b200"], 5);
  EXPECT_EQ(per_source["mbridge-gb200"], 4);
  EXPECT_EQ(runs[5].model, "llama3-8b");
  EXPECT_EQ(runs[5].source, "mbridge-h100");
  EXPECT_NEAR(runs[5].published_step_s, 9.07010, 1e-5);
  size_t all = 0;
  for (const auto& r : all_validation_runs()) all += r.source.rfind("mbridge-", 0) == 0 && !r.in_no_fit;
  EXPECT_EQ(all, 15u);
}

// The release column: a row of the release the mbridge-h100 profile is fitted on (25.11) keeps its source;
// a later release's row forms a source of its own, in no fit; anything but YY.MM is refused.
TEST(MBridge, ALaterReleaseIsASourceInNoFit) {
  const std::string header = std::string(kHeader).insert(std::string(kHeader).size() - 1, ",release");
  const std::string row = std::string(kRow).substr(0, std::string(kRow).size() - 1) + ",";
  const auto fitted = mbridge_runs_from_csv(header + row + "25.11\n", "m.csv");
  ASSERT_EQ(fitted.size(), 1u);
  EXPECT_EQ(fitted[0].source, "mbridge-h100");
  EXPECT_FALSE(fitted[0].in_no_fit);
  const auto later = mbridge_runs_from_csv(header + row + "26.04\n", "m.csv");
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].source, "mbridge-h100-26.04");
  EXPECT_TRUE(later[0].in_no_fit);
  EXPECT_FALSE(mbridge_runs()[0].in_no_fit);  // the 25.11 file has no release column
  EXPECT_TRUE(plantest::mentions(plantest::csv_errors(&mbridge_runs_from_csv, header + row + "2604\n", "m.csv"),
                                 "m.csv:2: release = 2604: must be a NeMo container release YY.MM, e.g. 26.04"));
}

// The compiled-in 26.04 table: its 4 DGX-H100 rows, in no fit, with the table's "FP8" and a dense row's
// "EP n/a". By hand, Qwen3_30B_a3B: 1024 x 4096 / (8901 x 16) = 4,194,304 / 142,416 = 29.4510 s, dp
// 16 / (tp 1 x pp 1) with EP 16 over both nodes; LLAMA3_70B: 256 x 8192 / (1633 x 64) = 2,097,152 / 104,512 = 20.0661 s.
TEST(MBridge, The2604TableIsFourH100RowsInNoFit) {
  const auto runs = mbridge_held_out_runs();
  ASSERT_EQ(runs.size(), 4u);
  for (const auto& r : runs) {
    EXPECT_EQ(r.source, "mbridge-h100-26.04");
    EXPECT_TRUE(r.in_no_fit);
    EXPECT_EQ(r.plan.cluster.gpu.id, "h100-sxm-80gb");
    EXPECT_EQ(r.plan.cluster.calibration.name, "mbridge-h100");
  }
  EXPECT_EQ(runs[0].model, "llama3-70b");
  EXPECT_EQ(runs[0].plan.parallel.ep, 1);
  EXPECT_EQ(runs[0].plan.training.precision, Precision::fp8);
  EXPECT_NEAR(runs[0].published_step_s, 20.0661, 1e-4);
  EXPECT_EQ(runs[2].model, "qwen3-30b-a3b");
  EXPECT_EQ(runs[2].plan.parallel.dp, 16);
  EXPECT_EQ(runs[2].plan.parallel.ep, 16);
  EXPECT_EQ(runs[2].plan.parallel.pp, 1);
  EXPECT_FALSE(runs[2].plan.parallel.ep_comm_overlap);
  EXPECT_NEAR(runs[2].published_step_s, 29.4510, 1e-4);
  EXPECT_EQ(runs[3].plan.parallel.ep, 16);  // plan_ep, as in 25.11
  size_t all = 0;
  for (const auto& r : all_validation_runs()) all += r.source == "mbridge-h100-26.04";
  EXPECT_EQ(all, 4u);
}

// A GB200 row's gpus_per_node is the NVLink domain the job holds (executors.py @ 7af9601c9: 4 ranks per
// Slurm node, one compute tray; beyond 18 trays, --segment = the largest divisor of the tray count not
// above 18). By hand: 8 GPUs = 2 trays, one rack: 8. 64 GPUs = 16 trays: 64. 256 GPUs = 64 trays,
// segment 16: 64. 96 GPUs = 24 trays, segment 12: 48. 88 GPUs = 22 trays, segment 11: 44. A DGX row: 8.
// Step of the 256-GPU Qwen3_235B_a22B row: 8192 x 4096 / (4916 x 256) = 33,554,432 / 1,258,496 = 26.6623 s.
TEST(MBridge, AGb200RowsNodeIsTheNvlinkDomainItsJobHolds) {
  const char* tail = ",FP8-CS,8448,1,8192,0,1,1,1,n/a,1,1,30000,1600,none,even,false,\n";
  std::string table = kHeader;
  for (int gpus : {8, 64, 256, 96, 88}) table += "DGX-GB200,llama3-8b,LLAMA3_8B," + std::to_string(gpus) + tail;
  table += std::string("DGX-H100,llama3-8b,LLAMA3_8B,64") + tail;
  const auto runs = mbridge_runs_from_csv(table, "m.csv");
  ASSERT_EQ(runs.size(), 6u);
  const int expected[] = {8, 64, 64, 48, 44, 8};
  for (size_t i = 0; i < runs.size(); ++i) EXPECT_EQ(runs[i].plan.cluster.gpus_per_node, expected[i]) << i;
  EXPECT_EQ(runs[0].source, "mbridge-gb200");
  EXPECT_EQ(runs[0].plan.cluster.gpu.id, "gb200");
  EXPECT_EQ(runs[0].plan.cluster.calibration.name, "mbridge-h100");
  for (const auto& r : mbridge_runs())
    if (r.source == "mbridge-gb200" && r.model == "qwen3-235b-a22b") {
      EXPECT_EQ(r.plan.cluster.gpus_per_node, 64);
      EXPECT_EQ(r.plan.parallel.dp, 32);  // 256 / (tp 1 x pp 8)
      EXPECT_EQ(r.plan.parallel.ep, 32);
      EXPECT_NEAR(r.published_step_s, 26.6623, 1e-4);
    }
}

// Leave-one-row-out recovers a GEMM efficiency that made the times: three H100 rows whose "published"
// step is the planner's own prediction at gemm 0.5 are fitted back to 0.5, and each held-out row is
// predicted within the fit's tolerance.
TEST(MBridge, LeaveOneRowOutRecoversTheEfficiencyThatMadeTheTimes) {
  std::vector<PublishedRun> runs;
  for (const auto& r : mbridge_runs())
    if (r.source == "mbridge-h100" && runs.size() < 3) runs.push_back(r);
  Calibration half;
  half.name = "half";
  half.params.push_back({"gemm", 0.5, false, ParamSource::fitted, ""});
  for (auto& r : runs) {
    r.plan.cluster.calibration = half;
    r.published_step_s = validate_runs({r}).front().predicted_step_s;
  }
  FitOptions gemm;
  gemm.fields = {"gemm"};
  for (bool robust : {false, true}) {  // exact rows: least squares and Huber's fit both give 0.5 back
    gemm.robust = robust;
    const auto rows = leave_one_row_out(runs, gemm);
    ASSERT_EQ(rows.size(), 3u);
    for (const RowHeldOut& r : rows) {
      EXPECT_NEAR(r.held_out_error, 0, 1e-3) << r.run.model << (robust ? " (Huber)" : "");
      EXPECT_NEAR(r.in_fit_error, 0, 1e-3) << r.run.model << (robust ? " (Huber)" : "");
    }
  }
  try {
    leave_one_row_out({runs[0]}, gemm);
    FAIL() << "held out the only row";
  } catch (const PlanError& e) {
    EXPECT_NE(std::string(e.what()).find("needs at least two rows"), std::string::npos) << e.what();
  }
}

// The shipped profile (data/calibration/mbridge-h100.json, from the command in docs/validation.md) is the
// fit of the GEMM efficiency on the six H100 rows with Huber's weights (calibrate --robust): refitting
// gives the same value.
TEST(MBridge, TheShippedH100ProfileIsTheFitOfTheH100Rows) {
  std::vector<PublishedRun> h100;
  for (const auto& r : mbridge_runs())
    if (r.source == "mbridge-h100") h100.push_back(r);
  FitOptions huber;
  huber.fields = {"gemm"};
  huber.robust = true;
  const auto rows = leave_one_row_out(h100, huber);
  const Calibration shipped = builtin_calibration("mbridge-h100");
  ASSERT_EQ(shipped.params.size(), 1u);
  EXPECT_EQ(shipped.params[0].name, "gemm");
  // The rows carry the shipped profile, so the in-fit prediction equals it when the refit does.
  const auto predicted = validate_runs(h100);
  for (size_t i = 0; i < rows.size(); ++i)
    EXPECT_NEAR(rows[i].in_fit_step_s / predicted[i].predicted_step_s, 1, 1e-3) << rows[i].run.model;
}

// The presets the table's MoE rows use, against their published sizes (excluding what the planner does
// not model: gpt-oss's attention sinks, 36 x 64 = 2,304).
// Qwen3-30B-A3B, by hand: embeddings 2 x 151,936 x 2,048 = 622,329,856; per layer q 2,048 x 4,096 + k, v
// 2,048 x 512 each + o 4,096 x 2,048 = 18,874,368, norms 4,096, the per-head q and k norms 2 x 128, router
// 128 x 2,048 = 262,144, experts 128 x 3 x 2,048 x 768 = 603,979,776: 623,120,640 x 48 = 29,909,790,720;
// + final norm 2,048 = 30,532,122,624 (model card: "30.5B in total"). Active: 8 of 128 experts,
// 3,353,032,704 ("3.3B activated").
TEST(MBridge, QwenAndGptOssPresetsHaveTheirPublishedSizes) {
  const ParamCount q30 = count_params(model_preset("qwen3-30b-a3b"));
  EXPECT_EQ(q30.total, 30'532'122'624);
  EXPECT_EQ(q30.active, 3'353'032'704);
  // Qwen3-235B-A22B model card: "235B in total and 22B activated".
  const ParamCount q235 = count_params(model_preset("qwen3-235b-a22b"));
  EXPECT_NEAR(q235.total / 1e9, 235, 1);
  EXPECT_NEAR(q235.active / 1e9, 22, 0.5);
  // gpt-oss-120b model card (OpenAI 2025, Table 1): 116.83B parameters, of which the MLP (experts with
  // biases and the router) 114.71B: 36 x (128 x (2,880 x 5,760 + 5,760 + 2,880 x 2,880 + 2,880) + 128 x
  // 2,880 + 128) = 114,714,874,368.
  const ParamCount oss = count_params(model_preset("gpt-oss-120b"));
  EXPECT_NEAR(oss.total / 1e9, 116.83, 0.01);
}

// NVIDIA ran every configuration of the table, so each fits its GPU (80 GB H100, 180 GB B200, 186 GB
// GB200): the memory model must not reject a plan that trains. Not the H100 and B200 GPT-OSS rows, whose
// cells disagree with the configurations of the release (GptOssFitsAsItsRecipeRunsIt); the GB200 one
// (micro-batch 1 where its config has 4) fits as the table gives it. Before Transformer Engine's FP8 inputs and
// cached weights and Megatron-Core's weighting of the experts in their activation were modelled, both Qwen3
// rows on H100 and Qwen3-235B-A22B on B200 were predicted not to fit.
TEST(MBridge, EveryPublishedConfigurationFitsItsGpu) {
  int checked = 0;
  std::vector<PublishedRun> runs = mbridge_runs();
  for (PublishedRun& r : mbridge_held_out_runs()) runs.push_back(std::move(r));
  for (const PublishedRun& r : runs) {
    if (r.model == "gpt-oss-120b" && r.source != "mbridge-gb200" && !r.in_no_fit) continue;
    const MemoryBreakdown m = estimate_memory(r.plan);
    EXPECT_TRUE(m.fits) << r.source << " " << r.model << ": " << m.peak_bytes / (1 << 30) << " GiB of "
                        << m.gpu_memory_bytes / (1 << 30);
    ++checked;
  }
  EXPECT_EQ(checked, 17);  // 13 of 25.11 and the 4 rows of 26.04 (its GPT-OSS row: micro-batch 1, as configured)
}

// The GPT-OSS rows as Megatron-Bridge v0.2.0 runs them (scripts/performance/configs/gpt_oss/
// workload_base_configs.py): H100 pp 4, EP 8, micro-batch 1 (the table says 4); B200 EP 64, micro-batch 4
// (the table says EP 8). Those configurations also list recompute_modules ["layernorm", "moe_act"], but
// no GPT-OSS recipe sets recompute_granularity, which stays None, and Megatron-Core recomputes those
// modules only under "selective" (core_v0.15.0 transformer_layer.py `recompute_granularity == 'selective'`,
// moe/experts.py `activation_recompute`): they run without recompute, as the rows say. Each fits its GPU.
//
// The table's H100 cells cannot have run so. By hand, stage 0 of pp 4 (9 of 36 layers) under 1F1B holds 4
// micro-batches of 4 x 4,096 = 16,384 tokens; the experts alone keep, per token, layer and routed copy
// (top 4, hidden 2,880, expert width 2,880, bf16), their fc1 input 5,760 B, the SwiGLU input 11,520 B and
// the fc2 input 5,760 B: 4 x 23,040 x 16,384 x 9 x 4 = 54,358,179,840 B = 50.63 GiB. The stage's 16 local
// experts a layer (128 / EP 8) have 2,880 x 5,760 + 5,760 + 2,880 x 2,880 + 2,880 = 24,891,840 parameters
// each, 3,584,424,960 in 9 layers: bf16 weights and bf16 gradients 4 B each (14.34 GB), fp32 master
// weights and Adam's two moments 12 B sharded over the expert data-parallel group of 16 / 8 = 2 (21.51 GB).
// 50.63 + 13.35 + 20.03 = 84.0 GiB > the H100's 79.65 GiB, before the attention and the dense weights.
TEST(MBridge, GptOssFitsAsItsRecipeRunsIt) {
  int checked = 0;
  for (const PublishedRun& r : mbridge_runs()) {
    if (r.model != "gpt-oss-120b" || r.source == "mbridge-gb200") continue;
    Plan recipe = r.plan;
    if (r.source == "mbridge-h100") {
      const MemoryBreakdown table = estimate_memory(r.plan);
      EXPECT_FALSE(table.fits);
      EXPECT_GT(table.peak_bytes / (1 << 30), 84.0);
      recipe.training.micro_batch = 1;
    } else {
      recipe.parallel.ep = 64;
    }
    const MemoryBreakdown m = estimate_memory(recipe);
    EXPECT_TRUE(m.fits) << r.source << ": " << m.peak_bytes / (1 << 30) << " GiB of " << m.gpu_memory_bytes / (1 << 30);
    ++checked;
  }
  EXPECT_EQ(checked, 2);
}

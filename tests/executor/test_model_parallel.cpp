// `paraplan run` with tensor, sequence and pipeline parallelism, recompute, dropout and LoRA, end to end
// on CPU workers over gloo.
// Equivalence: each plan reproduces the single-process run of the same model, recipe and global batch
// (5 steps, fp32): losses to 1e-5 relative on every rank, final weights to 1% of one AdamW step (as the
// data-parallel tests, test_runs.cpp). Tensor and pipeline parallelism only change the order of sums,
// and dropout draws the same masks on any layout (a counter-based draw of the global coordinates).
// Memory: every rank's measured bytes (counting allocator) equal the planner's prediction for its
// pipeline stage, category by category, to the byte (the executor profile replays the executor's
// allocations: planner/costs/src/executor_replay.cpp, executor_stage.cpp; exact on CPU, test_runs.cpp says why).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <nlohmann/json.hpp>
#include <string>

#include "paraplan/memory.hpp"
#include "paraplan/pipeline_schedule.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/rank_grid.hpp"
#include "paraplan/sim/simulate.hpp"
#include "paraplan/store.hpp"
#include "process_util.hpp"
#include "run_util.hpp"
#include "weights_util.hpp"

using namespace paraplan::planner;
using paraplan::test::cli;
using paraplan::test::expect_same_weights;
using paraplan::test::shell;
using paraplan::test::test_dir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// tiny-llama with 8 layers: the interleaved schedule on 4 stages needs pp * v = 8 model chunks.
const char* kLlama8 = R"({"name": "tiny-llama-8", "layers": 8, "hidden": 64, "heads": 4, "kv_heads": 2,
  "head_dim": 16, "ffn_hidden": 160, "vocab": 256})";
// GPT-shaped: LayerNorm, GeLU, biases, learned positions, tied embeddings, a vocabulary of 257.
const char* kGpt = R"({"name": "tiny-gpt", "layers": 2, "hidden": 64, "heads": 4, "kv_heads": 4, "head_dim": 16,
  "ffn_hidden": 256, "vocab": 257, "activation": "gelu", "norm": "layernorm", "tied_embeddings": true, "bias": "all",
  "position_embedding": "learned", "max_seq_len": 128})";
const char* kLoraTraining =
    R"({"lora": {"rank": 4, "alpha": 8, "base": "fp32", "targets": ["q_proj", "v_proj", "down_proj"]}})";

struct Case {
  const char* name;
  const char* model;     // a preset name or inline JSON
  const char* training;  // merged into the training section
  const char* parallel;  // the parallel section (dp, tp, pp, ...)
  int micro_batches;     // per data-parallel rank
  // The fraction of weights allowed past 1% of lr (weights_util.hpp expect_same_weights). By default 1e-4
  // (11 of tiny-llama's 119,104): which elements end near a rounding-level cancellation depends on the
  // order of the sums, and so on the GEMM kernel OpenBLAS picks for the CPU it runs on (DYNAMIC_ARCH). On
  // an AVX-512 Xeon one element of layer 1's up_proj ends 1.64% of lr away in tp2, tp2_sp, tp4_gqa_kv2 and
  // selective_tp2 (losses still agree to 1e-5), and none on the CPUs these tests ran on before: with no
  // allowance the outcome depended on the machine CI was given.
  double outliers = 1e-4;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

json model_json(const char* m) { return m[0] == '{' ? json::parse(m) : json(m); }

// The plan (micro-batch 2, seq 32, fp32) and its single-process reference (dp = tp = pp = 1, the same
// global batch).
std::string write(const fs::path& dir, const std::string& name, const Case& c, bool reference) {
  json par = json::parse(c.parallel);
  const int dp = par.value("dp", 1), tp = par.value("tp", 1), pp = par.value("pp", 1);
  json training = {{"seq_len", 32}, {"micro_batch", 2}, {"global_batch", 2 * dp * c.micro_batches},
                   {"precision", "fp32"}, {"recompute", "none"}, {"flash_attention", true}};
  training.merge_patch(json::parse(c.training));
  if (reference) par = {{"dp", 1}};
  const json doc = {{"model", model_json(c.model)},
                    {"training", training},
                    {"parallel", par},
                    {"cluster", {{"gpu", "cpu"}, {"gpus", reference ? 1 : dp * tp * pp}}}};
  const fs::path p = dir / (name + ".json");
  std::ofstream(p) << doc.dump(2);
  return p.string();
}

// Every rank's measured bytes equal the planner's prediction for that rank's stage (computed here
// from the plan, not read from the store), in every category.
void expect_memory_as_predicted(Store& store, int64_t run, const std::string& plan_file) {
  Plan p = load_plan(plan_file);
  p.training.framework = Framework::paraplan;
  const MemoryBreakdown m = estimate_memory(p);
  const RankGrid grid(p);
  int rows = 0;
  for (const MemoryRecord& r : store.memory(run)) {
    const StageMemory& s = m.per_stage.at(static_cast<size_t>(grid.index_in_group(Axis::pp, r.rank)));
    const std::map<std::string, double> pred = {
        {"weights", s.weights_bytes},     {"gradients", s.gradients_bytes},     {"master", s.master_weights_bytes},
        {"optimizer", s.optimizer_bytes}, {"activations", s.activations_bytes}, {"buffers", s.buffers_bytes},
        {"peak", s.allocated_bytes()}};
    if (!pred.count(r.category)) continue;
    ++rows;
    EXPECT_EQ(r.measured_bytes, pred.at(r.category)) << "rank " << r.rank << " " << r.category << " (bytes)";
  }
  EXPECT_EQ(rows, 7 * grid.world());
}

class ModelParallel : public ::testing::TestWithParam<Case> {};

std::string fmt_mib(double bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", bytes / (1 << 20));
  return buf;
}

}  // namespace

TEST_P(ModelParallel, MatchesTheSingleProcessRunAndThePlannersMemory) {
  const Case c = GetParam();
  const fs::path dir = test_dir();
  const std::string ref = write(dir, "reference", c, true), plan = write(dir, "plan", c, false);
  const bool lora = std::string(c.training).find("lora") != std::string::npos;
  const std::string db = (dir / "runs.sqlite").string();
  paraplan::test::expect_same_training(dir, ref, plan, RankGrid(load_plan(plan)).world(), lora, db, c.outliers);
  Store store(db);
  expect_memory_as_predicted(store, 2, plan);
}

INSTANTIATE_TEST_SUITE_P(
    Plans, ModelParallel,
    ::testing::Values(
        Case{"tp2", "tiny-llama", "{}", R"({"tp": 2})", 2},
        Case{"tp2_sp", "tiny-llama", "{}", R"({"tp": 2, "sequence_parallel": true})", 2},
        // tiny-llama has 2 key/value heads: on 4 ranks each holds one, shared by two.
        Case{"tp4_gqa_kv2", "tiny-llama", "{}", R"({"tp": 4})", 2},
        Case{"pp2_gpipe", "tiny-llama", "{}", R"({"pp": 2, "pp_schedule": "gpipe"})", 4},
        Case{"pp2_1f1b", "tiny-llama", "{}", R"({"pp": 2, "pp_schedule": "1f1b"})", 4},
        Case{"pp4_interleaved_v2", kLlama8, "{}", R"({"pp": 4, "pp_schedule": "interleaved", "virtual_stages": 2})", 4},
        Case{"pp2_zb_h1", "tiny-llama", "{}", R"({"pp": 2, "pp_schedule": "zb-h1"})", 4},
        Case{"pp2_zbv", kLlama8, "{}", R"({"pp": 2, "pp_schedule": "zbv", "virtual_stages": 2})", 4},
        Case{"dp2_tp2", "tiny-llama", "{}", R"({"dp": 2, "tp": 2})", 2},
        Case{"tp2_pp2", "tiny-llama", "{}", R"({"tp": 2, "pp": 2})", 4},
        Case{"dp2_pp2_zero1", "tiny-llama", "{}", R"({"dp": 2, "pp": 2, "zero": 1})", 4},
        Case{"dp2_pp2_zero3", "tiny-llama", "{}", R"({"dp": 2, "pp": 2, "zero": 3})", 4},
        Case{"selective_tp2", "tiny-llama", R"({"recompute": "selective"})", R"({"tp": 2})", 2},
        Case{"full_pp2_zb_h1", "tiny-llama", R"({"recompute": "full"})", R"({"pp": 2, "pp_schedule": "zb-h1"})", 4},
        Case{"dropout_tp2_sp", "tiny-llama", R"({"dropout": 0.1})", R"({"tp": 2, "sequence_parallel": true})", 2},
        Case{"dropout_eager_pp2", "tiny-llama", R"({"dropout": 0.1, "flash_attention": false})", R"({"pp": 2})", 4},
        Case{"lora_tp2", "tiny-llama", kLoraTraining, R"({"tp": 2})", 2},
        Case{"lora_pp2", "tiny-llama", kLoraTraining, R"({"pp": 2})", 4},
        // GPT-shaped: LayerNorm, GeLU, biases, learned positions, tied embeddings; vocabulary 257 padded
        // to 258 over two ranks. One gradient element (layer 1's c_attn, v column 29 of input feature 63)
        // is a cancellation to rounding noise at the first step: its sign, and so Adam's first move of
        // +-lr, depends on the summation order (checked with one step: it is the only element past the
        // bound). The run drifts from it: after 5 steps 59 of 124,736 weights are past 1% of lr (losses
        // still agree to 1e-5). Allowed: 0.1% of the elements.
        Case{"gpt_tp2_sp", kGpt, "{}", R"({"tp": 2, "sequence_parallel": true})", 2, 0.001},
        // Tied embeddings: under ZeRO-3 the head uses the embedding's table, gathered once per step into a
        // buffer of its own, and its gradient joins the embedding's own bucket; with the head on another
        // stage, that stage keeps a copy of the table and the two stages sum their gradients.
        Case{"gpt_tied_dp2_zero3", kGpt, "{}", R"({"dp": 2, "zero": 3})", 2},
        Case{"gpt_tied_dp2_pp2_zero1", kGpt, "{}", R"({"dp": 2, "pp": 2, "zero": 1})", 4}),
    [](const auto& info) { return std::string(info.param.name); });

// ---- The schedule each stage runs, and where its memory peaks

namespace {

struct StageLog {
  std::string ops;
  int peak_op = -1;
};

// Runs the plan with one `paraplan run` per rank (as torchrun starts them: each prints its own lines)
// and returns what every stage logged.
std::map<int, StageLog> run_stages(const fs::path& dir, const std::string& plan, int world) {
  const int port = paraplan::test::free_port();
  std::string cmd = "(";
  for (int r = 0; r < world; ++r)
    cmd += "RANK=" + std::to_string(r) + " LOCAL_RANK=" + std::to_string(r) + " WORLD_SIZE=" + std::to_string(world) +
           " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " " +
           cli("run " + plan + " --db '' --steps 2 --threads 1") + " > " + (dir / ("rank" + std::to_string(r))).string() +
           " 2>&1 & ";
  cmd += "wait)";
  shell(cmd);
  std::map<int, StageLog> out;
  for (int r = 0; r < world; ++r) {
    std::ifstream in(dir / ("rank" + std::to_string(r)));
    std::string line;
    while (std::getline(in, line)) {
      int rank = 0, stage = 0, op = 0;
      char rest[4096] = {};
      if (std::sscanf(line.c_str(), "rank %d stage %d ops: %4095[^\n]", &rank, &stage, rest) == 3) out[stage].ops = rest;
      if (std::sscanf(line.c_str(), "rank %d stage %d memory peak during op %d", &rank, &stage, &op) == 3)
        out[stage].peak_op = op;
    }
  }
  return out;
}

}  // namespace

namespace {

// The ops of stage s during which the simulator's memory timeline stands at the stage's peak (several
// when they tie: in steady 1F1B every backward of the last stage holds the same micro-batch count).
std::set<int> simulated_peak_ops(const paraplan::sim::SimResult& res, int stage) {
  using paraplan::sim::TaskKind;
  const double peak = res.timeline.peak_bytes.at(static_cast<size_t>(stage));
  const auto& g = res.graph.graph;
  const auto& ops = res.schedule.stages.at(static_cast<size_t>(stage));
  std::set<int> out;
  for (size_t i = 0; i < g.size(); ++i) {
    const auto& task = g[static_cast<paraplan::sim::TaskId>(i)];
    if (task.rank != stage || (task.kind != TaskKind::forward && task.kind != TaskKind::backward &&
                               task.kind != TaskKind::weight))
      continue;
    double level = -1;
    for (const auto& m : res.timeline.memory)
      if (m.rank == stage && m.time_s >= res.timeline.start_s[i] && m.time_s < res.timeline.end_s[i])
        level = std::max(level, m.bytes);
    if (std::abs(level - peak) > 1e-6 * peak) continue;
    const OpType type = task.kind == TaskKind::forward ? OpType::F : task.kind == TaskKind::backward ? OpType::B : OpType::W;
    for (size_t k = 0; k < ops.size(); ++k)
      if (ops[k].type == type && ops[k].chunk == res.schedule.local_of(task.chunk) && ops[k].mb == task.microbatch)
        out.insert(static_cast<int>(k));
  }
  return out;
}

struct ScheduleCase {
  const char* name;
  const char* model;
  const char* parallel;
};

void PrintTo(const ScheduleCase& c, std::ostream* os) { *os << c.name; }

class PipelineSchedules : public ::testing::TestWithParam<ScheduleCase> {};

}  // namespace

// The executor runs the planner's schedule generators (the simulator's), and logs the ops as it runs
// them: the log of every stage equals the generator's list. Its memory peak (counting allocator, the
// first op of the step with the highest allocation) lies in an op where the simulator's memory timeline
// stands at its peak. Where the timeline ties (the same micro-batches in flight), the executor's peak is
// the tied op where it still holds the most tensors it has sent (a stage drops a sent activation or
// gradient only once the receiver has begun the op that takes it: pipeline_schedule.hpp send_release),
// which the simulator counts as static pipeline buffers.
TEST_P(PipelineSchedules, EachStageRunsTheSimulatorsOpsAndPeaksWhereItsTimelineDoes) {
  const ScheduleCase c = GetParam();
  const fs::path dir = test_dir();
  const Case plan_case{c.name, c.model, "{}", c.parallel, 4};
  const std::string plan_file = write(dir, "plan", plan_case, false);
  const Plan plan = load_plan(plan_file);
  const std::map<int, StageLog> logs = run_stages(dir, plan_file, RankGrid(plan).world());
  const Schedule expected = make_schedule(plan.parallel.pp_schedule, plan.parallel.pp, plan.parallel.virtual_stages,
                                          plan.micro_batches());
  paraplan::sim::SimOptions so;
  so.record_memory = true;
  const paraplan::sim::SimResult sim = paraplan::sim::simulate(plan, so);
  ASSERT_EQ(logs.size(), static_cast<size_t>(plan.parallel.pp));
  for (int s = 0; s < plan.parallel.pp; ++s) {
    const StageLog& log = logs.at(s);
    EXPECT_EQ(log.ops, paraplan::sim::to_string(expected.stages[static_cast<size_t>(s)], expected.v)) << "stage " << s;
    const std::set<int> at_peak = simulated_peak_ops(sim, s);
    EXPECT_TRUE(at_peak.count(log.peak_op)) << "stage " << s << ": the executor peaks in op " << log.peak_op
                                            << " of " << log.ops << "; the simulator's timeline peaks in "
                                            << ::testing::PrintToString(at_peak);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Pp2, PipelineSchedules,
    ::testing::Values(ScheduleCase{"gpipe", "tiny-llama", R"({"pp": 2, "pp_schedule": "gpipe"})"},
                      ScheduleCase{"one_f_one_b", "tiny-llama", R"({"pp": 2, "pp_schedule": "1f1b"})"},
                      ScheduleCase{"interleaved_v2", kLlama8, R"({"pp": 2, "pp_schedule": "interleaved", "virtual_stages": 2})"},
                      ScheduleCase{"zb_h1", "tiny-llama", R"({"pp": 2, "pp_schedule": "zb-h1"})"},
                      ScheduleCase{"zbv", kLlama8, R"({"pp": 2, "pp_schedule": "zbv", "virtual_stages": 2})"}),
    [](const auto& info) { return std::string(info.param.name); });

// `paraplan run` of a pipelined plan prints each stage's memory and step time, from the rows the store
// keeps per rank (the rank grid says which rank is which stage's first).
TEST(PipelinedRuns, PrintEachStageFromTheStoresRows) {
  const fs::path dir = test_dir();
  const Case c{"pp2", "tiny-llama", "{}", R"({"pp": 2, "pp_schedule": "1f1b"})", 4};
  const std::string plan = write(dir, "plan", c, false), db = (dir / "runs.sqlite").string();
  const auto r = shell(cli("run " + plan + " --db " + db + " --steps 3 --threads 1"));
  ASSERT_EQ(r.code, 0) << r.out;
  const size_t header = r.out.find("stage   rank  peak pred MiB  peak meas MiB");
  ASSERT_NE(header, std::string::npos) << r.out;
  std::istringstream lines(r.out.substr(header));
  std::string line;
  std::getline(lines, line);
  Store store(db);
  for (int stage = 0; stage < 2; ++stage) {
    ASSERT_TRUE(std::getline(lines, line)) << r.out;
    std::istringstream f(line);
    int st = -1, rank = -1;
    std::string peak_pred, peak_meas;
    f >> st >> rank >> peak_pred >> peak_meas;
    EXPECT_EQ(st, stage) << line;
    EXPECT_EQ(rank, stage) << line;  // pp is the outermost mesh axis: rank s is stage s's first
    EXPECT_EQ(peak_pred, peak_meas) << line;
    // The printed peak is the store's row of that rank, in MiB.
    for (const MemoryRecord& m : store.memory(1))
      if (m.rank == rank && m.category == "peak") EXPECT_EQ(peak_meas, fmt_mib(m.measured_bytes)) << line;
  }
}

// ---- QLoRA

namespace {

class Qlora : public ::testing::TestWithParam<Case> {};

}  // namespace

// QLoRA (Dettmers et al. 2023): the frozen base as NF4 with double-quantised block scales, dequantised per
// layer for the matmul. Its losses and adapters equal a LoRA run (fp32 base) that starts from the same
// dequantised weights: the QLoRA run saves its base as it trains on it (dequantised; the bf16-kept norms
// and embedding widened), and the reference loads that. Memory: the NF4 storage to the byte (block
// counts rounded up per tensor, plus each tensor's fp32 mean), the dequantisation buffer of the largest
// unit, and the activations of LoRA.
TEST_P(Qlora, EqualsLoraOnTheDequantisedBase) {
  const Case c = GetParam();
  const fs::path dir = test_dir();
  const std::string plan = write(dir, "plan", c, false);
  const std::string db = (dir / "runs.sqlite").string();
  auto r = shell(cli("run " + plan + " --db " + db + " --steps 5 --lr 0.01 --threads 1 --save " + (dir / "base").string() +
                     " --save-adapter " + (dir / "out").string()));
  ASSERT_EQ(r.code, 0) << r.out;
  // The reference: one process, LoRA on an fp32 base read from the QLoRA run's saved base.
  json doc = json::parse(std::ifstream(write(dir, "reference", c, true)));
  doc["training"]["lora"]["base"] = "fp32";
  std::ofstream(dir / "reference.json") << doc.dump(2);
  r = shell(cli("run " + (dir / "reference.json").string() + " --db " + db + " --steps 5 --lr 0.01 --threads 1 --load " +
                (dir / "base").string() + " --save-adapter " + (dir / "ref-out").string()));
  ASSERT_EQ(r.code, 0) << r.out;
  Store store(db);
  std::map<int, double> ref_loss;
  for (const StepRecord& s : store.steps(2)) ref_loss[s.step] = s.loss;
  ASSERT_EQ(ref_loss.size(), 5u);
  EXPECT_LT(ref_loss[5], ref_loss[1]);
  for (const StepRecord& s : store.steps(1))
    EXPECT_NEAR(s.loss, ref_loss[s.step], 1e-5 * std::abs(ref_loss[s.step])) << "rank " << s.rank << " step " << s.step;
  expect_same_weights(dir / "out", dir / "ref-out", 0.01, "adapter_model.safetensors");
  expect_memory_as_predicted(store, 1, plan);
}

INSTANTIATE_TEST_SUITE_P(
    Nf4, Qlora,
    ::testing::Values(
        Case{"one_rank", "tiny-llama",
             R"({"lora": {"rank": 4, "alpha": 8, "base": "nf4", "targets": ["q_proj", "v_proj", "down_proj"]}})",
             R"({"dp": 1})", 2},
        Case{"tp2_dp2_zero2", "tiny-llama",
             R"({"lora": {"rank": 4, "alpha": 8, "base": "nf4", "targets": ["q_proj", "v_proj", "down_proj"]}})",
             R"({"dp": 2, "tp": 2, "zero": 2})", 2}),
    [](const auto& info) { return std::string(info.param.name); });

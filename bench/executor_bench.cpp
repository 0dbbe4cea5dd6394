// One training step of a small LLaMA-style model: the C++ executor against eager PyTorch
// (bench/pytorch_step.py, Debian's python3-torch) at the same thread count. Both do the same work per
// step: forward, backward and AdamW over 4 layers (h 256, 8 heads / 4 kv heads of 32, SwiGLU 704,
// vocabulary 2048) on 4 x 128 tokens, fp32.
//   build/bench/bench_executor --benchmark_repetitions=5          # OMP_WAIT_POLICY=PASSIVE, as paraplan run
//   OMP_WAIT_POLICY=ACTIVE build/bench/bench_executor ...         # OpenMP threads spin, for both sides
// BM_PyTorchStep reports the step times the Python script measured (manual time); set PARAPLAN_PYTHON to
// use another interpreter than /usr/bin/python3.
// BM_ParallelStep: the same model on two ranks, DP2, TP2 and PP2 (1F1B, 4 micro-batches of 4 x 128),
// over gloo on this machine: rank 0 runs in this process, rank 1 in a child (this binary again, started
// with --paraplan-rank1). Per step of rank 0: compute (the step less its blocked time), communication
// (blocked in the TP and DP collectives) and idle (blocked on the pipeline's receives and sends: the
// bubble), and the planner's predicted step time for the plan (counters compute_s, comm_s, idle_s,
// predicted_s). The Python peer inherits this process's environment
// (OMP_WAIT_POLICY, OPENBLAS_CORETYPE), so both run under the same threading settings; the label says
// which wait policy. "min" over repetitions is the least disturbed figure on a shared VM.
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "paraplan/exec/launch_env.hpp"
#include "paraplan/exec/prediction.hpp"
#include "paraplan/exec/trainer.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/rank_grid.hpp"
#include "../tests/executor/process_util.hpp"

using namespace paraplan;

namespace {

constexpr int kLayers = 4, kHidden = 256, kHeads = 8, kKvHeads = 4, kHeadDim = 32, kFfn = 704, kVocab = 2048;
constexpr int kSeq = 128, kBatch = 4;

double min_of(const std::vector<double>& v) { return v.empty() ? 0 : *std::min_element(v.begin(), v.end()); }

std::string wait_policy() {
  const char* p = std::getenv("OMP_WAIT_POLICY");
  return std::string("OMP_WAIT_POLICY=") + (p ? p : "default");
}

void set_threads(int n) {
  at::set_num_threads(n);
  using SetThreads = void (*)(int);
  if (auto f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(n);
}

planner::Plan bench_plan(bool flash) {
  const nlohmann::json doc = {
      {"model", {{"name", "bench-llama"}, {"layers", kLayers}, {"hidden", kHidden}, {"heads", kHeads},
                 {"kv_heads", kKvHeads}, {"head_dim", kHeadDim}, {"ffn_hidden", kFfn}, {"vocab", kVocab}}},
      {"training", {{"seq_len", kSeq}, {"micro_batch", kBatch}, {"global_batch", kBatch}, {"precision", "fp32"},
                    {"recompute", "none"}, {"flash_attention", flash}}},
      {"parallel", {{"dp", 1}}},
      {"cluster", {{"gpu", "cpu"}, {"gpus", 1}}}};
  return planner::plan_from_json(doc);
}

// Args: threads, flash attention (0: eager attention keeping the probabilities, as PyTorch eager does).
void BM_ExecutorStep(benchmark::State& state) {
  set_threads(static_cast<int>(state.range(0)));
  auto groups = exec::make_fake_groups(0, planner::RankGrid());  // a world of one
  exec::TrainOptions o;
  o.plan = bench_plan(state.range(1) != 0);
  exec::Trainer t(o, *groups);
  for (int i = 0; i < 2; ++i) t.step();  // warm-up, as the Python peer does
  for (auto _ : state) benchmark::DoNotOptimize(t.step().loss);
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(kBatch * kSeq), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(wait_policy());
}
BENCHMARK(BM_ExecutorStep)
    ->ArgsProduct({{1, 2}, {0, 1}})
    ->ArgNames({"threads", "flash"})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0)
    ->ComputeStatistics("min", min_of);

void BM_PyTorchStep(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const char* py = std::getenv("PARAPLAN_PYTHON") ? std::getenv("PARAPLAN_PYTHON") : "/usr/bin/python3";
  const std::string cmd = "OMP_NUM_THREADS=" + std::to_string(threads) + " OPENBLAS_NUM_THREADS=" +
                          std::to_string(threads) + " " + py + " " + PARAPLAN_SOURCE_DIR + "/bench/pytorch_step.py" +
                          " --threads " + std::to_string(threads) + " --steps 10 --layers " + std::to_string(kLayers) +
                          " --hidden " + std::to_string(kHidden) + " --heads " + std::to_string(kHeads) +
                          " --kv-heads " + std::to_string(kKvHeads) + " --head-dim " + std::to_string(kHeadDim) +
                          " --ffn " + std::to_string(kFfn) + " --vocab " + std::to_string(kVocab) + " --seq " +
                          std::to_string(kSeq) + " --batch " + std::to_string(kBatch);
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    pclose(p);
  }
  const nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded() || !j.contains("step_s")) {
    state.SkipWithError(("pytorch_step.py failed (python3-torch installed?): " + out.substr(0, 200)).c_str());
    return;
  }
  const std::vector<double> times = j["step_s"].get<std::vector<double>>();
  size_t i = 0;
  for (auto _ : state) state.SetIterationTime(times[i++ % times.size()]);
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(kBatch * kSeq), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel("torch " + j.value("torch", std::string("?")) + ", " + wait_policy());
}
BENCHMARK(BM_PyTorchStep)
    ->Arg(1)
    ->Arg(2)
    ->ArgName("threads")
    ->UseManualTime()
    ->Iterations(10)
    ->Unit(benchmark::kMillisecond)
    ->ComputeStatistics("min", min_of);

// ---- two ranks: DP2, TP2, PP2

struct Layout {
  const char* name;
  int dp, tp, pp;
};
constexpr Layout kLayouts[] = {{"dp2", 2, 1, 1}, {"tp2", 1, 2, 1}, {"pp2_1f1b", 1, 1, 2}};
constexpr int kParallelSteps = 10, kWarmup = 2;

planner::Plan parallel_plan(const Layout& l) {
  nlohmann::json doc = nlohmann::json::parse(planner::plan_to_json(bench_plan(true)).dump());
  doc["training"]["global_batch"] = kBatch * 4 * l.dp;  // 4 micro-batches per data-parallel rank
  doc["parallel"] = {{"dp", l.dp}, {"tp", l.tp}, {"pp", l.pp}, {"pp_schedule", "1f1b"}};
  doc["cluster"]["gpus"] = 2;
  return planner::plan_from_json(doc);
}

using paraplan::test::free_port;  // the executor tests' helper: a free port below the ephemeral range

// One rank: kWarmup + steps steps; returns rank 0's per-step figures.
std::vector<exec::StepStats> run_rank(const Layout& l, int rank, int port, int steps) {
  setenv("RANK", std::to_string(rank).c_str(), 1);
  setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
  setenv("WORLD_SIZE", "2", 1);
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  const planner::Plan plan = parallel_plan(l);
  auto groups = exec::make_gloo_groups(*exec::launch_env(), planner::RankGrid(plan), exec::GlooOptions{});
  exec::TrainOptions o;
  o.plan = plan;
  exec::Trainer t(o, *groups);
  std::vector<exec::StepStats> out;
  for (int i = 0; i < kWarmup + steps; ++i) {
    const exec::StepStats s = t.step();
    if (i >= kWarmup) out.push_back(s);
  }
  groups->world->barrier();
  groups->finish();
  return out;
}

// Args: the layout (index into kLayouts). One thread per rank (two ranks on this machine's cores).
void BM_ParallelStep(benchmark::State& state) {
  const Layout& l = kLayouts[state.range(0)];
  set_threads(1);
  const int port = free_port();
  const pid_t child = fork();
  if (child == 0) {
    const std::string self = "/proc/self/exe";
    execl(self.c_str(), self.c_str(), "--paraplan-rank1", std::to_string(state.range(0)).c_str(),
          std::to_string(port).c_str(), std::to_string(state.max_iterations).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const std::vector<exec::StepStats> steps = run_rank(l, 0, port, static_cast<int>(state.max_iterations));
  int status = 0;
  waitpid(child, &status, 0);
  double comm = 0, idle = 0, total = 0;
  size_t i = 0;
  for (auto _ : state) {
    const exec::StepStats& s = steps.at(i++ % steps.size());
    state.SetIterationTime(s.step_s);
    total += s.step_s;
    idle += s.pp_s;
    comm += s.comm_s - s.pp_s;
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["compute_s"] = (total - comm - idle) / n;
  state.counters["comm_s"] = comm / n;
  state.counters["idle_s"] = idle / n;
  state.counters["predicted_s"] = exec::predicted_step_seconds(exec::as_executor_plan(parallel_plan(l))).value_or(0);
  state.SetLabel(std::string(l.name) + ", gloo, 1 thread per rank");
}
BENCHMARK(BM_ParallelStep)
    ->DenseRange(0, 2)
    ->ArgName("layout")
    ->UseManualTime()
    ->Iterations(kParallelSteps)
    ->Unit(benchmark::kMillisecond);

}  // namespace

// Both sides run under the threading settings `paraplan run` gives its workers (cmd_run.cpp): passive
// OpenMP waiting unless the caller chose a policy. libgomp reads it when it loads, so set it and
// re-execute; the Python peer inherits it.
int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "--paraplan-rank1") {  // BM_ParallelStep's second rank
    set_threads(1);
    run_rank(kLayouts[std::stoi(argv[2])], 1, std::stoi(argv[3]), std::stoi(argv[4]));
    return 0;
  }
  if (!std::getenv("OMP_WAIT_POLICY")) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);  // returns only on failure: then run as we are
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

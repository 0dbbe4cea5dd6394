// One training step of a small LLaMA-style model: the C++ executor against eager PyTorch
// (bench/pytorch_step.py, Debian's python3-torch) at the same thread count. Both do the same work per
// step: forward, backward and AdamW over 4 layers (h 256, 8 heads / 4 kv heads of 32, SwiGLU 704,
// vocabulary 2048) on 4 x 128 tokens, fp32.
//   build/bench/bench_executor --benchmark_repetitions=5          # OMP_WAIT_POLICY=PASSIVE, as paraplan run
//   OMP_WAIT_POLICY=ACTIVE build/bench/bench_executor ...         # OpenMP threads spin, for both sides
// BM_PyTorchStep reports the step times the Python script measured (manual time); set PARAPLAN_PYTHON to
// use another interpreter than /usr/bin/python3. The Python peer inherits this process's environment
// (OMP_WAIT_POLICY, OPENBLAS_CORETYPE), so both run under the same threading settings; the label says
// which wait policy. "min" over repetitions is the least disturbed figure on a shared VM.
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "paraplan/exec/trainer.hpp"
#include "paraplan/plan_io.hpp"

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

}  // namespace

// Both sides run under the threading settings `paraplan run` gives its workers (cmd_run.cpp): passive
// OpenMP waiting unless the caller chose a policy. libgomp reads it when it loads, so set it and
// re-execute; the Python peer inherits it.
int main(int argc, char** argv) {
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

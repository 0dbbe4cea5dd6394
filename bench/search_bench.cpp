// Search and time-model speed. Run: build/bench/bench_search
//   BM_SearchLlama405B/threads: the full space for LLaMA-3.1-405B on 16,384 H100s (target < 2 s on
//   2 cores); the "plans/s" counter divided by the thread count is the per-core rate (target >= 1e6).
//   "timed/s" counts the plans that fit, which also get the step-time model (the others stop at memory).
#include <benchmark/benchmark.h>

#include "bench_plans.hpp"
#include "paraplan/calibration.hpp"
#include "paraplan/presets.hpp"
#include "paraplan/search.hpp"
#include "paraplan/timing.hpp"

using namespace paraplan::planner;

namespace {

Plan llama405b_16k() {
  Plan p = paraplan::bench::llama405b_on_h100(128, 8, 16);
  p.cluster.calibration = builtin_calibration("published");
  return p;
}

void BM_SearchLlama405B(benchmark::State& state) {
  const Plan base = llama405b_16k();
  SearchOptions o;
  o.threads = static_cast<int>(state.range(0));
  uint64_t plans = 0, timed = 0;
  for (auto _ : state) {
    const SearchResult r = search(base, o);
    plans += r.evaluated;
    timed += r.fitting;
    benchmark::DoNotOptimize(r.top.data());
  }
  // Every evaluated plan gets a full memory estimate; the ones that fit also get the step-time model.
  state.counters["plans/s"] = benchmark::Counter(static_cast<double>(plans), benchmark::Counter::kIsRate);
  state.counters["timed/s"] = benchmark::Counter(static_cast<double>(timed), benchmark::Counter::kIsRate);
  state.counters["plans/s/thread"] =
      benchmark::Counter(static_cast<double>(plans) / static_cast<double>(state.range(0)), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SearchLlama405B)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_TimeEstimate(benchmark::State& state) {
  Plan p = llama405b_16k();
  p.parallel.pp_schedule = PipelineSchedule::interleaved;
  p.parallel.virtual_stages = 2;
  p.parallel.sequence_parallel = true;
  for (auto _ : state) benchmark::DoNotOptimize(estimate_time(p));
  state.SetLabel("llama3-405b tp8 pp16 v2 (workload lowering + every stage)");
}
BENCHMARK(BM_TimeEstimate);

}  // namespace

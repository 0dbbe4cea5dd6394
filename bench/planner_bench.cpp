// Planner speed. Run: build/bench/bench_planner
//   BM_MemoryEstimate: one full memory estimate (workload lowering + every stage), target < 2 us.
#include <benchmark/benchmark.h>

#include "bench_plans.hpp"
#include "paraplan/context.hpp"
#include "paraplan/memory.hpp"
#include "paraplan/presets.hpp"

using namespace paraplan::planner;

namespace {

// 8,192 GPUs; the pipeline interleaved (16 stages of 2 chunks), ZeRO-1 with sequence parallelism.
Plan llama405b() {
  Plan p = paraplan::bench::llama405b_on_h100(64, 8, 16);
  p.training.micro_batch = 1;
  p.parallel.zero = 1;
  p.parallel.sequence_parallel = true;
  p.parallel.pp_schedule = PipelineSchedule::interleaved;
  p.parallel.virtual_stages = 2;
  return p;
}

void BM_MemoryEstimate(benchmark::State& state) {
  const Plan p = state.range(0) ? llama405b() : [] {
    Plan q = llama405b();
    q.model = model_preset("llama3-8b");
    q.parallel = {};
    q.parallel.dp = 8;
    q.cluster.gpus = 8;
    return q;
  }();
  for (auto _ : state) benchmark::DoNotOptimize(estimate_memory(p));
  state.SetLabel(state.range(0) ? "llama3-405b, pp=16 v=2 (16 stages)" : "llama3-8b, dp=8 (1 stage)");
}
BENCHMARK(BM_MemoryEstimate)->Arg(0)->Arg(1);

// The memory model alone on a prebuilt shape context: what the search pays when it reuses them.
void BM_MemoryFromContext(benchmark::State& state) {
  const Plan p = llama405b();
  const ShapeContext ctx = make_context(p);
  for (auto _ : state) benchmark::DoNotOptimize(estimate_memory(p, ctx));
}
BENCHMARK(BM_MemoryFromContext);

void BM_BuildWorkload(benchmark::State& state) {
  const Plan p = llama405b();
  const FrameworkProfile& fw = framework_profile(p.framework());
  for (auto _ : state) benchmark::DoNotOptimize(build_workload(p, fw, shape_of(p)));
}
BENCHMARK(BM_BuildWorkload);

}  // namespace

// Simulator speed. Run: build/bench/bench_simulator (docs/simulator.md records the figures).
//   BM_EngineRun: the event engine alone on a prebuilt step graph; counter events/s (target >= 5 M/s).
//   BM_Simulate405B: the whole `simulate(plan)` for LLaMA-3.1-405B, tp=8 pp=16 dp=128, interleaved v=4
//     (126 layers over 64 chunks, uneven), m=128 micro-batches: costs, schedule, graph, run, analysis
//     (target < 100 ms). Arg 1: the same with ZeRO-3 (a gather and a reduce-scatter per layer and pass).
#include <benchmark/benchmark.h>

#include "paraplan/context.hpp"
#include "paraplan/presets.hpp"
#include "paraplan/sim/simulate.hpp"

using namespace paraplan;
using planner::PipelineSchedule;

namespace {

planner::Plan llama405b(int zero) {
  planner::Plan p;
  p.model = planner::model_preset("llama3-405b");
  p.training.seq_len = 8192;
  p.training.micro_batch = 1;
  p.training.global_batch = 16384;  // dp 128 x 128 micro-batches
  p.training.recompute = planner::Recompute::selective;
  p.parallel.dp = 128;
  p.parallel.tp = 8;
  p.parallel.pp = 16;
  p.parallel.zero = zero;
  p.parallel.sequence_parallel = true;
  p.parallel.pp_schedule = PipelineSchedule::interleaved;
  p.parallel.virtual_stages = 4;
  p.cluster.gpu = planner::hardware_preset("h100-sxm-80gb");
  p.cluster.gpus = 128 * 8 * 16;
  return p;
}

void BM_EngineRun(benchmark::State& state) {
  const planner::Plan p = llama405b(static_cast<int>(state.range(0)));
  const planner::ShapeContext ctx = planner::make_context(p);
  const sim::Schedule s = sim::make_schedule(p.parallel.pp_schedule, p.parallel.pp, p.parallel.virtual_stages,
                                             p.micro_batches());
  const sim::StepGraph g = sim::build_step_graph(s, sim::build_costs(p, ctx), sim::GraphOptions{});
  uint64_t events = 0;
  for (auto _ : state) {
    const sim::Timeline tl = sim::run(g.graph);
    events += tl.events;
    benchmark::DoNotOptimize(tl.makespan_s);
  }
  state.counters["events/s"] = benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
  state.counters["tasks"] = static_cast<double>(g.graph.size());
  state.SetLabel(state.range(0) == 3 ? "405B step graph, ZeRO-3" : "405B step graph, ZeRO-1");
}
BENCHMARK(BM_EngineRun)->Arg(1)->Arg(3)->Unit(benchmark::kMillisecond);

void BM_Simulate405B(benchmark::State& state) {
  const planner::Plan p = llama405b(static_cast<int>(state.range(0)));
  uint64_t events = 0;
  for (auto _ : state) {
    const sim::SimResult r = sim::simulate(p);
    events += r.timeline.events;
    benchmark::DoNotOptimize(r.step_s);
  }
  state.counters["events/s"] = benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
  state.SetLabel(state.range(0) == 3 ? "llama3.1-405b tp8 pp16 v4 m128, ZeRO-3" : "llama3.1-405b tp8 pp16 v4 m128, ZeRO-1");
}
BENCHMARK(BM_Simulate405B)->Arg(1)->Arg(3)->Unit(benchmark::kMillisecond);

}  // namespace

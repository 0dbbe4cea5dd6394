// simulate(): costs and statics from the planner, the graph, the run, and the step split by cause.
#include "paraplan/sim/simulate.hpp"

#include <algorithm>

#include "paraplan/comm.hpp"
#include "paraplan/context.hpp"
#include "paraplan/error.hpp"
#include "paraplan/memory.hpp"
#include "paraplan/pipeline.hpp"
#include "paraplan/timing.hpp"

namespace paraplan::sim {

using namespace planner;

namespace {

constexpr long long kMaxMicroBatchChunks = 1LL << 22;

// Time a stage waits for communication of `kind`, by category.
void add_wait(StageResult& st, TaskKind kind, double wait) {
  switch (kind) {
    case TaskKind::tp_exposed: st.tp_s += wait; break;
    case TaskKind::p2p: st.pp_s += wait; break;
    case TaskKind::param_gather:
    case TaskKind::grad_scatter: st.zero3_s += wait; break;
    default: st.dp_s += wait; break;
  }
}

// Why the compute stream of `r` sat idle from `idle_from` until task `id` started: the dependency that
// arrived last. Waiting on a transfer counts as pipeline communication while the transfer ran and as
// bubble before (the sending stage was still computing); waiting on another stage's compute is bubble.
void attribute(const SimResult& res, StageResult& st, TaskId id, double idle_from) {
  const Timeline& tl = res.timeline;
  const double start = tl.start_s[static_cast<size_t>(id)];
  const double gap = start - idle_from;
  if (gap <= 0) return;
  const TaskId trig = tl.trigger[static_cast<size_t>(id)];
  if (trig < 0) {
    st.bubble_s += gap;
    return;
  }
  const TaskKind kind = res.graph.graph[trig].kind;
  if (is_compute(kind)) {
    st.bubble_s += gap;
  } else if (kind == TaskKind::p2p) {
    const double comm = std::min(gap, start - std::max(idle_from, tl.start_s[static_cast<size_t>(trig)]));
    st.pp_s += comm;
    st.bubble_s += gap - comm;
  } else {
    add_wait(st, kind, gap);
  }
}

void analyze(SimResult& res) {
  const Graph& g = res.graph.graph;
  const Timeline& tl = res.timeline;
  std::vector<double> idle_from(res.stages.size(), 0);
  std::vector<TaskId> last_comm(res.stages.size(), -1);  // the stage's communication that ends last
  for (size_t i = 0; i < g.size(); ++i) {
    const Task& t = g.tasks()[i];
    if (t.stream != Stream::compute) {
      TaskId& lc = last_comm[static_cast<size_t>(t.rank)];
      if (t.kind != TaskKind::param_allgather && (lc < 0 || tl.end_s[i] > tl.end_s[static_cast<size_t>(lc)]))
        lc = static_cast<TaskId>(i);
      continue;
    }
    StageResult& st = res.stages[static_cast<size_t>(t.rank)];
    attribute(res, st, static_cast<TaskId>(i), idle_from[static_cast<size_t>(t.rank)]);
    st.busy_s += t.duration_s;
    if (t.kind == TaskKind::optimizer) st.optimizer_s += t.duration_s;
    idle_from[static_cast<size_t>(t.rank)] = tl.end_s[i];
  }
  for (StageResult& st : res.stages) {
    const auto s = static_cast<size_t>(st.stage);
    st.end_s = idle_from[s];
    // Communication still running after the last compute (no optimizer step waits for it) ends the step.
    const TaskId lc = last_comm[s];
    if (lc >= 0 && tl.end_s[static_cast<size_t>(lc)] > st.end_s) {
      add_wait(st, g[lc].kind, tl.end_s[static_cast<size_t>(lc)] - st.end_s);
      st.end_s = tl.end_s[static_cast<size_t>(lc)];
    }
    // ZeRO-1/2: the updated parameters are all-gathered after the step; with overlap the next step's
    // forward hides up to one micro-batch's forward of it (Megatron --overlap-param-gather), as step.cpp.
    const TaskId ag = res.graph.param_allgather[s];
    if (ag >= 0) {
      const double tail = std::max(0.0, tl.end_s[static_cast<size_t>(ag)] - st.placed.gather_window_s - st.end_s);
      st.dp_s += tail;
      st.end_s += tail;
    }
    st.peak_dynamic_bytes = tl.peak_bytes[s];
    st.peak_time_s = tl.peak_time_s[s];
    st.peak_bytes = st.total_bytes(st.peak_dynamic_bytes);
  }
  for (StageResult& st : res.stages)
    if (st.end_s > res.step_s) {
      res.step_s = st.end_s;
      res.critical_stage = st.stage;
    }
  for (StageResult& st : res.stages) {
    st.idle_s = res.step_s - st.busy_s;
    // A stage that ends early waits for the slowest one: the rest of its step is bubble.
    st.bubble_s += res.step_s - st.end_s;
  }
  const StageResult& c = res.stages[static_cast<size_t>(res.critical_stage)];
  res.optimizer_s = c.optimizer_s;
  res.compute_s = c.busy_s - c.optimizer_s;
  res.bubble_s = c.bubble_s;
  res.tp_s = c.tp_s;
  res.pp_s = c.pp_s;
  res.dp_s = c.dp_s;
  res.zero3_s = c.zero3_s;
  res.exposed_comm_s = c.exposed_comm_s();
}

}  // namespace

SimResult simulate(const Schedule& schedule, const StepCosts& costs, const GraphOptions& graph_options,
                   const std::vector<StageStatic>& statics, const SimOptions& options) {
  SimResult res;
  res.schedule = schedule;
  res.graph = build_step_graph(schedule, costs, graph_options);
  res.timeline = run(res.graph.graph, options.record_memory);
  res.stages.resize(static_cast<size_t>(schedule.p));
  for (int s = 0; s < schedule.p; ++s) {
    res.stages[static_cast<size_t>(s)].stage = s;
    if (static_cast<size_t>(s) < statics.size()) res.stages[static_cast<size_t>(s)].placed = statics[static_cast<size_t>(s)];
  }
  analyze(res);
  return res;
}

SimResult simulate(const Plan& plan, const SimOptions& options) {
  const auto& par = plan.parallel;
  // Every task of the step is held at once (2,000,000 take about 180 MB): past 2^22 micro-batches x
  // model chunks the simulation is refused rather than exhausting memory; the planner's closed form
  // (paraplan plan) has no such bound.
  const double work = static_cast<double>(plan.micro_batches()) * par.pp * par.virtual_stages;
  if (work > kMaxMicroBatchChunks)
    throw PlanError("training.global_batch", std::to_string(plan.training.global_batch),
                    "gives " + std::to_string(plan.micro_batches()) + " micro-batches x " +
                        std::to_string(par.pp * par.virtual_stages) +
                        " model chunks; the event simulation takes at most " + std::to_string(kMaxMicroBatchChunks) +
                        " (use paraplan plan, whose closed form has no bound)");
  const Schedule schedule = make_schedule(par.pp_schedule, par.pp, par.virtual_stages, plan.micro_batches());
  const ShapeContext ctx = make_context(plan);
  const StepCosts costs = build_costs(plan, ctx);

  // Statics per stage, with the embedding and the head where the schedule places their chunks.
  std::vector<StageStatic> statics(static_cast<size_t>(par.pp));
  GraphOptions go;
  go.dp_overlap = dp_overlaps(plan);  // CPU workers with no core to spare do not overlap (comm.hpp)
  go.optimizer_s.resize(static_cast<size_t>(par.pp));
  const double tsp = par.sequence_parallel && par.tp > 1 ? par.tp : 1;
  // PP send + receive buffers of one boundary activation (memory.cpp); DP buckets beyond the gradients.
  const double p2p_buffers = par.pp > 1 ? 2 * ctx.w.act_bytes * ctx.w.tokens * plan.model.hidden / tsp : 0;
  const double buckets = costs.dp.reduce_grads ? ctx.fw.dp_bucket_bytes : 0;
  for (int s = 0; s < par.pp; ++s) {
    StageStatic& st = statics[static_cast<size_t>(s)];
    for (int local = 0; local < schedule.v; ++local) {
      const ChunkCost& ch = costs.chunks[static_cast<size_t>(schedule.model_chunk(s, local))];
      st.dense_layers += ch.dense;
      st.moe_layers += ch.moe;
      st.has_embedding |= ch.embedding;
      st.has_head |= ch.head;
      st.gather_window_s += ch.f_compute_s + ch.f_exposed_s;
    }
    const StageLayers layers{st.dense_layers, st.moe_layers};
    const StageMemory mem = stage_memory(plan, ctx, s, layers, st.has_embedding, st.has_head);
    st.static_bytes = mem.weights_bytes + mem.gradients_bytes + mem.master_weights_bytes + mem.optimizer_bytes +
                      buckets + p2p_buffers;
    st.fixed_overhead_bytes = mem.cuda_context_bytes + mem.nccl_bytes;
    st.headroom = plan.cluster.gpu.is_cpu ? 0 : ctx.fw.overheads.allocator_headroom;
    go.optimizer_s[static_cast<size_t>(s)] = stage_time(plan, ctx, s, layers, st.has_embedding, st.has_head).optimizer;
  }
  return simulate(schedule, costs, go, statics, options);
}

}  // namespace paraplan::sim

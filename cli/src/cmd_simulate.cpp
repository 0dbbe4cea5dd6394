// paraplan simulate FILE.json [--set k=v ...] [--trace out.json] [--memory out.csv] [--json]: one training
// step played event by event (simulator/), beside the planner's closed form.
#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "format.hpp"
#include "paraplan/memory.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/report.hpp"
#include "paraplan/sim/simulate.hpp"
#include "paraplan/sim/trace.hpp"
#include "paraplan/timing.hpp"

namespace paraplan::cli {

using namespace planner;

namespace {

struct SimulateOptions {
  std::string file;
  std::vector<std::string> overrides;
  std::string trace, memory;
  bool json = false;
};

std::ofstream open_out(const std::string& path) {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write " + path);
  return out;
}

nlohmann::json to_json(const sim::SimResult& r) {
  nlohmann::json j = {{"step_s", r.step_s},
                      {"compute_s", r.compute_s},
                      {"bubble_s", r.bubble_s},
                      {"exposed_comm_s", r.exposed_comm_s},
                      {"optimizer_s", r.optimizer_s},
                      {"critical_stage", r.critical_stage},
                      {"exposed_comm", {{"tp_s", r.tp_s}, {"pp_s", r.pp_s}, {"dp_s", r.dp_s}, {"zero3_s", r.zero3_s}}},
                      {"events", r.timeline.events},
                      {"per_stage", nlohmann::json::array()}};
  for (const sim::StageResult& s : r.stages)
    j["per_stage"].push_back({{"stage", s.stage},
                              {"peak_bytes", whole_bytes(s.peak_bytes)},
                              {"peak_time_s", s.peak_time_s},
                              {"busy_s", s.busy_s},
                              {"idle_s", s.idle_s},
                              {"bubble_s", s.bubble_s},
                              {"exposed_comm_s", s.exposed_comm_s()},
                              {"end_s", s.end_s}});
  return j;
}

void print_summary(const Plan& plan, const sim::SimResult& r, const MemoryBreakdown& mem, const StepEstimate& est,
                   double wall_s) {
  const auto& par = plan.parallel;
  fmt::print("{} on {} x {}: one step simulated on one pipeline ({} stages; by symmetry it stands for all {} "
             "data-parallel replicas)\n",
             plan.model.name, plan.cluster.gpus, plan.cluster.gpu.name, par.pp, par.dp);
  fmt::print("  schedule {}{}, {} micro-batch{} per step, ZeRO-{}, dp_overlap {}, tp_comm_overlap {}\n\n",
             to_string(par.pp_schedule), par.virtual_stages > 1 ? fmt::format(" (v={})", par.virtual_stages) : "",
             plan.micro_batches(), plan.micro_batches() == 1 ? "" : "es", par.zero, par.dp_overlap ? "on" : "off", par.tp_comm_overlap ? "on" : "off");
  fmt::print("Step time {} = compute {} + exposed communication {} + pipeline bubble {} + optimizer {} (stage {}, "
             "which finishes last)\n",
             seconds(r.step_s), seconds(r.compute_s), seconds(r.exposed_comm_s), seconds(r.bubble_s),
             seconds(r.optimizer_s), r.critical_stage);
  fmt::print("  exposed communication: TP/CP/EP {}, pipeline p2p {}, DP gradients and parameters {}, ZeRO-3 {}\n",
             seconds(r.tp_s), seconds(r.pp_s), seconds(r.dp_s), seconds(r.zero3_s));
  fmt::print("  planner (closed form): step {} = compute {} + exposed communication {} + bubble {} + optimizer {}{}\n\n",
             seconds(est.step_s), seconds(est.compute_s), seconds(est.exposed_comm_s), seconds(est.bubble_s),
             seconds(est.optimizer_s), est.host_s > 0 ? " + host " + seconds(est.host_s) : "");
  fmt::print("Per stage: times per step; memory in GiB (2^30 bytes), peak with allocator headroom and CUDA/NCCL\n");
  fmt::print("{:>5} {:>10} {:>10} {:>10} {:>10} {:>12} {:>9} {:>10} {:>12}\n", "stage", "layers", "busy", "idle",
             "bubble", "exposed comm", "peak GiB", "peak at", "planner GiB");
  for (const sim::StageResult& s : r.stages) {
    const auto& pl = s.placed;
    const std::string where = std::string(pl.has_embedding ? " emb" : "") + (pl.has_head ? " head" : "");
    fmt::print("{:>5} {:>10} {:>10} {:>10} {:>10} {:>12} {:>9} {:>10} {:>12}\n", s.stage,
               fmt::format("{}{}", pl.dense_layers + pl.moe_layers, where), seconds(s.busy_s), seconds(s.idle_s),
               seconds(s.bubble_s), seconds(s.exposed_comm_s()), gib(s.peak_bytes), seconds(s.peak_time_s),
               gib(mem.per_stage[static_cast<size_t>(s.stage)].total_bytes()));
  }
  double worst = 0;
  int worst_stage = 0;
  for (const sim::StageResult& s : r.stages)
    if (s.peak_bytes > worst) {
      worst = s.peak_bytes;
      worst_stage = s.stage;
    }
  const double cap = plan.cluster.gpu.memory_bytes;
  fmt::print("\nVerdict: {} — the worst stage ({}) peaks at {} of {} per {}\n", worst <= cap ? "FITS" : "DOES NOT FIT",
             worst_stage, gib_unit(worst), gib_unit(cap), plan.cluster.gpu.name);
  fmt::print("\n{} events ({} tasks) simulated in {}\n", count(static_cast<double>(r.timeline.events)),
             count(static_cast<double>(r.graph.graph.size())), seconds(wall_s));
}

}  // namespace

Command add_simulate_command(CLI::App& app) {
  auto [sub, o] = subcommand<SimulateOptions>(app, "simulate", R"(Play one training step event by event: the pipeline schedule on every stage, TP/DP/PP communication
and its overlap, memory over time. Prints the step split like `plan` does, per-stage busy/idle and
peak memory beside the planner's. Example:
  paraplan simulate data/examples/llama3-8b.json --set parallel.pp=4 --set parallel.dp=2 --trace step.json
  (open step.json in https://ui.perfetto.dev))");
  add_plan_file(*sub, o->file);
  add_overrides(*sub, o->overrides, "parallel.pp_schedule=zbv");
  add_calibration_option(*sub, o->overrides);
  sub->add_option("--trace", o->trace, "write a Chrome-trace JSON (Perfetto): a process per stage, a thread per stream");
  sub->add_option("--memory", o->memory, "write memory over time per stage as CSV (bytes)");
  sub->add_flag("--json", o->json, "print {step_s, bubble_s, exposed_comm_s, per_stage: [...]} instead of tables");
  return {sub, [o] {
            const Plan plan = load_plan(o->file, o->overrides);
            sim::SimOptions so;
            so.record_memory = !o->trace.empty() || !o->memory.empty();
            const auto t0 = std::chrono::steady_clock::now();
            const sim::SimResult r = sim::simulate(plan, so);
            const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            if (!o->trace.empty()) {
              std::ofstream out = open_out(o->trace);
              sim::write_chrome_trace(out, r);
            }
            if (!o->memory.empty()) {
              std::ofstream out = open_out(o->memory);
              sim::write_memory_csv(out, r);
            }
            if (o->json) {
              std::cout << to_json(r).dump(2) << "\n";
              return 0;
            }
            print_summary(plan, r, estimate_memory(plan), estimate_time(plan), wall);
            if (!o->trace.empty()) fmt::print("Trace: {} (open in https://ui.perfetto.dev)\n", o->trace);
            if (!o->memory.empty()) fmt::print("Memory over time: {}\n", o->memory);
            print_moe_track_record(plan.model);
            print_calibration(plan.cluster.gpu, plan.cluster.calibration);
            return 0;
          }};
}

}  // namespace paraplan::cli

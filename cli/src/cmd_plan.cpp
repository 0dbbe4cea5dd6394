// paraplan plan FILE.json [--set k=v ...] [--json]: the memory of one plan, per pipeline stage.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "format.hpp"
#include "paraplan/memory.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/report.hpp"
#include "paraplan/timing.hpp"
#include "paraplan/validation.hpp"

namespace paraplan::cli {

using namespace planner;

namespace {

struct PlanOptions {
  std::string file;
  std::vector<std::string> overrides;
  bool json = false;
  bool causal = false;
  double tokens = 0;
  double price = 0;
};

void print_time(const Plan& plan, const StepEstimate& t, double tokens) {
  fmt::print("\nStep time {} per optimizer step ({} tokens): compute {} + exposed communication {} + pipeline "
             "bubble {} + optimizer {}{}\n",
             seconds(t.step_s), count(static_cast<double>(plan.training.global_batch) * plan.training.seq_len),
             seconds(t.compute_s), seconds(t.exposed_comm_s), seconds(t.bubble_s), seconds(t.optimizer_s),
             // the host's launches the device waits for, and the framework's per-micro-batch and per-step work
             t.host_s > 0 ? " + host " + seconds(t.host_s) : "");
  fmt::print("  exposed communication: TP/CP/EP {}, pipeline p2p {}, DP gradients {}, ZeRO-3 gathers {}\n",
             seconds(t.tp_exposed_s), seconds(t.pp_p2p_s), seconds(t.dp_exposed_s), seconds(t.zero3_exposed_s));
  fmt::print("  throughput {} tokens/s, {:.1f} model TFLOP/s per GPU, MFU {}, HFU {} (attention FLOPs counted {}; "
             "calibration \"{}\")\n",
             count(t.tokens_per_s), t.tflops_per_gpu, percent(t.mfu), percent(t.hfu),
             t.convention == AttentionFlops::causal ? "causally (half)" : "in full", plan.cluster.calibration.name);
  if (tokens > 0) {
    const nlohmann::json b = budget_report(plan, t, tokens);
    fmt::print("  {} tokens: {:.1f} days of wall time, {} GPU-hours", short_count(tokens), b["wall_days"].get<double>(),
               count(b["gpu_hours"].get<double>()));
    if (b.contains("cost")) fmt::print(", cost {} at {:.2f} per GPU-hour", count(b["cost"].get<double>()), plan.cluster.price_per_gpu_hour);
    fmt::print("\n");
  }
}

void print_table(const Plan& plan, const MemoryBreakdown& mem) {
  const auto& par = plan.parallel;
  const auto& tr = plan.training;
  const nlohmann::json model = model_report(plan);
  fmt::print("{} on {} x {}\n", plan.model.name, plan.cluster.gpus, plan.cluster.gpu.name);
  fmt::print("  parallel: dp={} tp={} pp={} cp={} ep={}  ZeRO-{}{}  schedule {}{}\n", par.dp, par.tp, par.pp, par.cp,
             par.ep, par.zero, par.sequence_parallel ? "  sequence-parallel" : "", to_string(par.pp_schedule),
             par.virtual_stages > 1 ? fmt::format(" (v={})", par.virtual_stages) : "");
  fmt::print("  training: seq {} x micro-batch {} (global {}, {} micro-batch{} per step), {}, grads {}, {}, "
             "recompute {}, flash {}, framework {}{}\n",
             tr.seq_len, tr.micro_batch, tr.global_batch, plan.micro_batches(), plan.micro_batches() == 1 ? "" : "es",
             to_string(tr.precision),
             to_string(tr.grad_dtype), to_string(tr.optimizer), to_string(tr.recompute),
             tr.flash_attention ? "on" : "off", framework_profile(plan.framework()).name,
             tr.cross_entropy == CrossEntropy::te ? ", Transformer Engine's fused cross entropy" : "");
  fmt::print("  model: {} parameters ({})", short_count(model["params"].get<double>()),
             count(model["params"].get<double>()));
  if (tr.lora)
    fmt::print("; LoRA r={} trains {} of {} ({:.4f}%), base {}", tr.lora->rank,
               count(model["trainable_params"].get<double>()), count(model["all_params"].get<double>()),
               model["trainable_percent"].get<double>(), to_string(tr.lora->base));
  fmt::print("\n\n");

  fmt::print("Memory per GPU, GiB (2^30 bytes)\n");
  fmt::print("{:>5} {:>6} {:>9} {:>9} {:>9} {:>9} {:>11} {:>8} {:>9} {:>9}", "stage", "layers", "weights", "grads",
             "master", "optim", "activations", "buffers", "overhead", "total");
  const bool offload = tr.offload != Offload::none;
  fmt::print("{}\n", offload ? fmt::format(" {:>10}", "host (off)") : "");
  for (const StageMemory& s : mem.per_stage) {
    std::string where = s.has_embedding && s.has_head ? "" : s.has_embedding ? " emb" : s.has_head ? " head" : "";
    fmt::print("{:>5} {:>6} {:>9} {:>9} {:>9} {:>9} {:>11} {:>8} {:>9} {:>9}", fmt::format("{}{}", s.stage,
               s.stage == mem.worst_stage && mem.per_stage.size() > 1 ? "*" : ""),
               fmt::format("{}{}", s.dense_layers + s.moe_layers, where), gib(s.weights_bytes), gib(s.gradients_bytes),
               gib(s.master_weights_bytes), gib(s.optimizer_bytes), gib(s.activations_bytes), gib(s.buffers_bytes),
               gib(s.overhead_bytes), gib(s.total_bytes()));
    fmt::print("{}\n", offload ? fmt::format(" {:>10}", gib(s.host_bytes)) : "");
  }
  const StageMemory& w = mem.per_stage[mem.worst_stage];
  fmt::print("\nWorst rank: stage {} — {} allocated + {} overhead (CUDA context {}, NCCL {}, allocator headroom {})\n",
             w.stage, gib_unit(w.allocated_bytes()), gib_unit(w.overhead_bytes), gib_unit(w.cuda_context_bytes),
             gib_unit(w.nccl_bytes), gib_unit(w.headroom_bytes));
  fmt::print("  activations: {} micro-batch(es) in flight hold {}, plus a {} working set\n",
             fmt::format("{:.3g}", w.inflight_microbatches), gib_unit(w.saved_activation_bytes),
             gib_unit(w.working_bytes));
  if (w.fp8_weight_cache_bytes > 0)
    fmt::print("  weights: include {} of FP8 weight copies (Transformer Engine keeps them, row- and column-wise, for "
               "the step)\n",
               gib_unit(w.fp8_weight_cache_bytes));
  const double cap = mem.gpu_memory_bytes;
  if (mem.fits)
    fmt::print("Verdict: FITS — {} of {} ({} used, {} free)\n", gib_unit(mem.peak_bytes), gib_unit(cap),
               percent(mem.peak_bytes / cap), gib_unit(cap - mem.peak_bytes));
  else
    fmt::print("Verdict: DOES NOT FIT — {} needed on a {} device (short by {})\n", gib_unit(mem.peak_bytes),
               gib_unit(cap), gib_unit(mem.peak_bytes - cap));
}

}  // namespace

Command add_plan_command(CLI::App& app) {
  auto [sub, opt] = subcommand<PlanOptions>(app, "plan", R"(Memory per GPU and per pipeline stage for one plan: weights, gradients, master weights, optimizer
states, activations, communication buffers and framework overheads, with a verdict against the
GPU's memory. Example:
  paraplan plan data/examples/llama3-8b.json --set parallel.zero=1 --set training.micro_batch=2)");
  add_plan_file(*sub, opt->file);
  add_overrides(*sub, opt->overrides, "parallel.tp=4 --set training.lora.rank=16");
  add_calibration_option(*sub, opt->overrides);
  sub->add_flag("--json", opt->json, "print a JSON object (plan, model, memory, time) instead of tables");
  sub->add_flag("--causal-flops", opt->causal,
                "count causal attention as half its FLOPs in MFU/HFU (default: in full, as PaLM and published Megatron MFUs)");
  sub->add_option("--tokens", opt->tokens, "token budget: print wall time, GPU-hours and cost to train on this many tokens")
      ->check(kPositive);
  sub->add_option("--price", opt->price, "price of one GPU-hour, for --tokens (same as cluster.price_per_gpu_hour)")
      ->check(kNonNegative);
  return {sub, [opt] {
            Plan plan = load_plan(opt->file, opt->overrides);
            if (opt->price > 0) plan.cluster.price_per_gpu_hour = opt->price;
            const MemoryBreakdown mem = estimate_memory(plan);
            const StepEstimate time = estimate_time(plan, opt->causal ? AttentionFlops::causal : AttentionFlops::full);
            if (opt->json) {
              nlohmann::json j = plan_report(plan, mem, time);
              if (opt->tokens > 0) j["budget"] = budget_report(plan, time, opt->tokens);
              if (plan.model.moe) {  // how far MoE step times were off on published runs (validation.hpp)
                const TrackRecord t = moe_track_record();
                j["moe_track_record"] = {{"rows", t.rows}, {"too_fast", t.too_fast}, {"in_no_fit", t.in_no_fit},
                                         {"min_error", t.min_error}, {"max_error", t.max_error},
                                         {"mean_abs_error", t.mean_abs_error}, {"sources", t.sources}};
              }
              std::cout << j.dump(2) << "\n";
            } else {
              print_table(plan, mem);
              print_time(plan, time, opt->tokens);
              print_moe_track_record(plan.model);
              print_calibration(plan.cluster.gpu, plan.cluster.calibration);
            }
            return 0;
          }};
}

}  // namespace paraplan::cli

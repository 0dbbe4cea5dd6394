#include "paraplan/teach/tour.hpp"

#include <fmt/format.h>

#include <cmath>

#include "paraplan/bytes_per_param.hpp"
#include "paraplan/error.hpp"
#include "paraplan/params.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/teach/table.hpp"

namespace paraplan::teach {

using namespace planner;
using nlohmann::json;

namespace {

json plan_of(const std::string& model, json training, json parallel, int gpus) {
  json t = {{"seq_len", 2048}, {"micro_batch", 1}, {"precision", "bf16"}, {"optimizer", "adamw"}};
  for (auto& [k, v] : training.items()) t[k] = v;
  return {{"model", model}, {"training", t}, {"parallel", parallel},
          {"cluster", {{"gpu", "h100-sxm-80gb"}, {"gpus", gpus}}}};
}

std::string count(double n) {
  std::string s = fmt::format("{:.0f}", n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0 && s[i - 1] != '-') out += ',';
    out += s[i];
  }
  return out;
}
std::string gib(double b) { return fmt::format("{:.2f} GiB", b / double(1ull << 30)); }
std::string gb(double b) { return fmt::format("{:.1f} GB", b / 1e9); }

// In and out features of each LoRA target (HF LLaMA: q_proj [H*hd, h], k/v_proj [KV*hd, h], ...).
std::pair<int64_t, int64_t> target_dims(const ModelSpec& m, LoraTarget t) {
  const int64_t h = m.hidden, q = int64_t{m.heads} * m.head_dim, kv = int64_t{m.kv_heads} * m.head_dim, f = m.ffn_hidden;
  switch (t) {
    case kQProj: return {h, q};
    case kKProj: case kVProj: return {h, kv};
    case kOProj: return {q, h};
    case kGateProj: case kUpProj: return {h, f};
    case kDownProj: return {f, h};
  }
  return {0, 0};
}

const StageMemory& worst(const MemoryBreakdown& m) { return m.per_stage[static_cast<size_t>(m.worst_stage)]; }
double states(const StageMemory& s) { return s.weights_bytes + s.gradients_bytes + s.master_weights_bytes + s.optimizer_bytes; }

// The formula of each kind, evaluated for this plan (r: this step, b: the step it compares with).
void explain(TourKind kind, const TourResult& b, TourResult& r) {
  const Plan& p = r.plan;
  const ModelSpec& m = p.model;
  const double n = static_cast<double>(model_params(m, std::nullopt).total);
  const int dp = p.parallel.dp;
  const double w = weight_bytes_per_param(p.training.precision), g = grad_bytes_per_param(p.training.precision, p.training.grad_dtype);
  const double opt = optimizer_bytes_per_param(p.training.optimizer), master = 4;
  const double full_bpp = w + g + master + opt;
  switch (kind) {
    case TourKind::full:
      r.formula = "model states = (weights + gradients + master + Adam m, v) x N = (2 + 4 + 4 + 8) B x N "
                  "(mixed-precision AdamW with fp32 gradients, Megatron-LM; ZeRO, Rajbhandari et al. 2020 §3.1, "
                  "counts 16 B with 16-bit gradients)";
      r.worked = fmt::format("{:.0f} B x {} parameters = {} = {}", full_bpp, count(n), gb(full_bpp * n), gib(full_bpp * n));
      r.explanation = fmt::format(
          "Every parameter trains. The model states alone need {} on one GPU of {} before a single activation, so full "
          "fine-tuning {} (the chapter's 7B x 2 B = 14 GB counts the bf16 weights only).",
          gib(states(worst(r.memory))), gib(r.memory.gpu_memory_bytes), r.memory.fits ? "fits" : "does not fit");
      break;
    case TourKind::lora: {
      const LoraSpec& l = *p.training.lora;
      std::string per_layer;
      int64_t layer_sum = 0;
      for (unsigned bit = 0; bit < 7; ++bit) {
        const auto t = static_cast<LoraTarget>(1u << bit);
        if (!l.has(t)) continue;
        const auto [in, out] = target_dims(m, t);
        per_layer += fmt::format("{}{}: {}({} + {})", per_layer.empty() ? "" : " + ", kLoraTargetNames[bit], l.rank, in, out);
        layer_sum += lora_params(in, out, l.rank);
      }
      const ModelParams mp = model_params(m, l);
      r.formula = "LoRA trains r(d + k) parameters per d x k matrix instead of d k (Hu et al. 2021 §4.1; chapter "
                  "10.2: for d = k = 4096, r = 8 that is 65,536 of 16,777,216 = 0.39%, not the 0.76% the chapter prints)";
      r.worked = fmt::format("{} layers x ({}) = {} x {} = {} trainable parameters, {:.4f}% of {}", m.layers, per_layer,
                             m.layers, count(static_cast<double>(layer_sum)), count(static_cast<double>(mp.trainable_total)),
                             100.0 * static_cast<double>(mp.trainable_total) / static_cast<double>(mp.total), count(static_cast<double>(mp.total)));
      r.explanation = fmt::format(
          "The frozen bf16 base keeps only its weights: no gradients, no master copy, no Adam moments for it. Model "
          "states fall from {} to {}; the adapters' own states are {} of it.",
          gib(states(worst(b.memory))), gib(states(worst(r.memory))),
          gib(static_cast<double>(mp.trainable_total) * full_bpp));
      break;
    }
    case TourKind::qlora: {
      const double nf4 = nf4_bytes_per_param();
      r.formula = "NF4 with double quantisation: 4 bits per frozen linear weight + an 8-bit scale per 64 weights + an fp32 "
                  "scale per 256 of those = 4 + 8/64 + 32/(64 x 256) = 4.127 bits = 0.516 B per parameter (Dettmers "
                  "et al. 2023, QLoRA §3) instead of 2 B in bf16";
      r.worked = fmt::format("{:.3f} B vs {:.0f} B per linear weight: weights {} -> {} ({:.2f}x smaller)", nf4, w,
                             gib(worst(b.memory).weights_bytes), gib(worst(r.memory).weights_bytes),
                             worst(b.memory).weights_bytes / worst(r.memory).weights_bytes);
      r.explanation = "Embeddings, the head and the norms stay bf16; the adapters and the activations do not change.";
      break;
    }
    case TourKind::dp:
      r.formula = "data parallelism: every GPU holds a whole replica and 1/dp of the global batch (chapter 10.3.1); "
                  "memory per GPU = model states + activations of its micro-batch, independent of dp";
      r.worked = fmt::format("dp = {}: model states per GPU {} (unchanged), global batch {} sequences = {} per GPU "
                             "per step",
                             dp, gib(states(worst(r.memory))), p.training.global_batch, p.training.global_batch / dp);
      r.explanation = fmt::format("{} GPUs process {} times the sequences of one, but each still needs the whole "
                                  "model's states: {} {} an 80 GB GPU.",
                                  dp, dp, gib(r.memory.peak_bytes), r.memory.fits ? "fits" : "does not fit");
      break;
    case TourKind::zero1: case TourKind::zero2: case TourKind::zero3: {
      const int z = kind == TourKind::zero1 ? 1 : kind == TourKind::zero2 ? 2 : 3;
      const double bpp = z == 1 ? w + g + (master + opt) / dp : z == 2 ? w + (g + master + opt) / dp : full_bpp / dp;
      const char* what = z == 1 ? "2 + 4 + (4 + 8)/dp" : z == 2 ? "2 + (4 + 4 + 8)/dp" : "(2 + 4 + 4 + 8)/dp";
      r.formula = fmt::format("ZeRO-{} bytes per parameter = {} (Rajbhandari et al. 2020, Figure 1, with fp32 "
                              "gradients: ZeRO-1 shards the optimizer states, ZeRO-2 also the gradients, ZeRO-3 / FSDP "
                              "also the weights)", z, what);
      r.worked = fmt::format("dp = {}: {:.3f} B x {} = {} of model states per GPU (planner: {})", dp, bpp, count(n),
                             gib(bpp * n), gib(states(worst(r.memory))));
      r.explanation = z == 3 ? "FSDP all-gathers each layer's weights just before it runs and frees them after "
                               "(chapter 10.3.2): the buffers hold the gathered layers, and the data-parallel "
                               "traffic grows from 2 to 3 times the model size per step."
                             : z == 2 ? "Gradients are reduce-scattered straight into their owner's shard."
                                      : "Each GPU updates only its 1/dp of the master weights, then all-gathers the "
                                        "updated bf16 weights.";
      break;
    }
    case TourKind::tp: {
      const int t = p.parallel.tp;
      r.formula = "tensor parallelism splits Q/K/V and the MLP by heads and columns (Megatron-LM, Shoeybi et al. 2019 "
                  "§3): weights, gradients and optimizer states of each layer / tp, activations mostly / tp; "
                  "4 all-reduces of s b h activations per layer per micro-batch (2 forward, 2 backward)";
      r.worked = fmt::format("tp = {}: parameters per GPU {} (was {}); all-reduce of {} x {} x {} x 2 B = {:.1f} MiB, "
                             "4 x {} layers per micro-batch",
                             t, count(worst(r.memory).params), count(worst(b.memory).params), p.training.seq_len,
                             p.training.micro_batch, m.hidden,
                             static_cast<double>(p.training.seq_len) * p.training.micro_batch * m.hidden * 2 / (1 << 20),
                             m.layers);
      r.explanation = "No gathering: every GPU computes its part of every matrix product. The price is exposed "
                      "communication inside every layer (the step time below), which is why TP stays within a node.";
      break;
    }
    case TourKind::pp: {
      const int pp = p.parallel.pp;
      const double mb = static_cast<double>(p.micro_batches());
      r.formula = "pipeline parallelism: L/p layers per stage; 1F1B keeps up to p - s micro-batches of activations on "
                  "stage s; idle bubble = (p - 1)/m of the ideal step (Narayanan et al. 2021, §2.2)";
      r.worked = fmt::format("pp = {}: {} layers per stage, m = {:.0f} micro-batches, bubble (p - 1)/m = {}/{:.0f} = "
                             "{:.1f}%; the worst stage is stage {}",
                             pp, m.layers / pp, mb, pp - 1, mb, 100.0 * (pp - 1) / mb, r.memory.worst_stage);
      r.explanation = "Stages are not equal: the first keeps the embedding and the most micro-batches in flight, "
                      "the last the head and the logits.";
      break;
    }
    case TourKind::recompute: {
      const double s = p.training.seq_len, bb = p.training.micro_batch, h = m.hidden, a = m.heads;
      const double none = s * bb * h * (34 + 5 * a * s / h);
      r.formula = "activations kept per layer without recompute: s b h (34 + 5 a s / h) bytes (Korthikanti et al. "
                  "2022, Eq. 1, 16-bit); full recompute keeps only each layer's input, 2 s b h bytes, and re-runs the "
                  "forward in the backward (about a third more compute)";
      r.worked = fmt::format("s = {:.0f}, b = {:.0f}, h = {:.0f}, a = {:.0f}: {} per layer without recompute vs {} "
                             "with full recompute (this step turns recompute off; flash attention keeps no s^2 scores, "
                             "so the planner's count is lower than Eq. 1)",
                             s, bb, h, a, gib(none), gib(2 * s * bb * h));
      r.explanation = "Without recompute every layer keeps its activations for the backward: activation memory grows, "
                      "and the step gets faster by the forward it no longer repeats.";
      break;
    }
  }
}

}  // namespace

std::vector<TourStep> tour_steps(const std::string& model) {
  const json lora = {{"rank", 8}, {"alpha", 32}, {"targets", {"q_proj", "v_proj"}}};
  json qlora = lora;
  qlora["base"] = "nf4";
  const json one = {{"dp", 1}};
  const json g8 = {{"global_batch", 8}, {"recompute", "full"}};
  const json g64 = {{"global_batch", 64}, {"recompute", "full"}};
  json g8_lora = g8, g8_qlora = g8, g64_none = g64;
  g8_lora["lora"] = lora;
  g8_qlora["lora"] = qlora;
  g64_none["recompute"] = "none";
  return {
      {TourKind::full, "1. Full fine-tuning on one GPU", "the start: every parameter trains", "10.3",
       plan_of(model, g8, one, 1), -1},
      {TourKind::lora, "2. LoRA: freeze the base, train adapters (the chapter's recipe)",
       "training.lora = {r: 8, alpha: 32, targets: q_proj, v_proj}", "10.2 LoRA", plan_of(model, g8_lora, one, 1), 0},
      {TourKind::qlora, "3. QLoRA: a 4-bit base", "training.lora.base: bf16 -> nf4", "10.2 LoRA",
       plan_of(model, g8_qlora, one, 1), 1},
      {TourKind::dp, "4. Full training again, data parallel on 8 GPUs (DDP)", "parallel.dp: 1 -> 8 (global batch 64)",
       "10.3.1 DP / DDP", plan_of(model, g64, {{"dp", 8}, {"zero", 0}}, 8), 0},
      {TourKind::zero1, "5. ZeRO-1: shard the optimizer states", "parallel.zero: 0 -> 1", "10.3.3 ZeRO",
       plan_of(model, g64, {{"dp", 8}, {"zero", 1}}, 8), 3},
      {TourKind::zero2, "6. ZeRO-2: shard the gradients too", "parallel.zero: 1 -> 2", "10.3.3 ZeRO",
       plan_of(model, g64, {{"dp", 8}, {"zero", 2}}, 8), 4},
      {TourKind::zero3, "7. ZeRO-3 / FSDP: shard the parameters too", "parallel.zero: 2 -> 3", "10.3.2 FSDP",
       plan_of(model, g64, {{"dp", 8}, {"zero", 3}}, 8), 5},
      {TourKind::tp, "8. Tensor parallelism: split every layer's matrices", "parallel.dp: 8 -> 1, parallel.tp: 1 -> 8",
       "10.3.2 TP", plan_of(model, g64, {{"dp", 1}, {"tp", 8}}, 8), 3},
      {TourKind::pp, "9. Pipeline parallelism: split the layers", "parallel.tp: 8 -> 2, parallel.pp: 1 -> 4",
       "10.3.2 PP", plan_of(model, g64, {{"dp", 1}, {"tp", 2}, {"pp", 4}}, 8), 7},
      {TourKind::recompute, "10. Recompute: trade compute for activation memory", "training.recompute: full -> none",
       "10.3.3 gradient checkpointing", plan_of(model, g64_none, {{"dp", 1}, {"tp", 2}, {"pp", 4}}, 8), 8},
  };
}

namespace {

TourResult evaluate_plan(const json& doc) {
  TourResult r;
  Violations v;
  try {
    r.plan = plan_from_json(doc);
    validate_plan(r.plan, v);
  } catch (const PlanError& e) {
    for (const auto& x : e.violations()) v.add(x.field, x.value, x.rule);
  }
  if (!v.empty()) {
    for (const auto& x : v.list()) r.error += (r.error.empty() ? "" : "; ") + x.to_string();
    return r;
  }
  r.valid = true;
  r.memory = estimate_memory(r.plan);
  r.time = estimate_time(r.plan);
  return r;
}

}  // namespace

TourResult evaluate_tour_step(const std::vector<TourStep>& steps, int i) {
  const TourStep& st = steps.at(static_cast<size_t>(i));
  TourResult r = evaluate_plan(st.plan);
  if (!r.valid) return r;
  TourResult b;
  if (st.compare_with >= 0) b = evaluate_plan(steps.at(static_cast<size_t>(st.compare_with)).plan);
  const StageMemory& a = worst(r.memory);
  const StageMemory* p = b.valid ? &worst(b.memory) : nullptr;
  auto row = [&](const char* name, double now, double before, bool bytes) {
    r.rows.push_back({name, before, now, p != nullptr, bytes});
  };
  row("weights", a.weights_bytes, p ? p->weights_bytes : 0, true);
  row("gradients", a.gradients_bytes, p ? p->gradients_bytes : 0, true);
  row("master weights", a.master_weights_bytes, p ? p->master_weights_bytes : 0, true);
  row("optimizer states", a.optimizer_bytes, p ? p->optimizer_bytes : 0, true);
  row("activations", a.activations_bytes, p ? p->activations_bytes : 0, true);
  row("buffers + overheads", a.buffers_bytes + a.overhead_bytes, p ? p->buffers_bytes + p->overhead_bytes : 0, true);
  row("total (worst GPU)", a.total_bytes(), p ? p->total_bytes() : 0, true);
  row("step time", r.time.step_s, b.valid ? b.time.step_s : 0, false);
  if (st.compare_with < 0 || b.valid) explain(st.kind, b, r);
  return r;
}

std::string tour_text(const std::vector<TourStep>& steps) {
  std::string out;
  for (int i = 0; i < static_cast<int>(steps.size()); ++i) {
    const TourStep& st = steps[static_cast<size_t>(i)];
    out += fmt::format("\n{} (chapter {})\n  changes: {}\n", st.title, st.section, st.knob);
    const TourResult r = evaluate_tour_step(steps, i);
    if (!r.valid) {
      out += "  not possible for this model: " + r.error + "\n";
      continue;
    }
    TextTable t;
    t.headers = {"  what (worst GPU)", st.compare_with >= 0 ? fmt::format("step {}", st.compare_with + 1) : "before",
                 "this step", "change"};
    for (const TourRow& row : r.rows) {
      auto f = [&](double v) { return row.bytes ? gib(v) : fmt::format("{:.3f} s", v); };
      std::string change = "—";
      if (row.has_before) {
        const double d = row.now - row.before;
        const bool same = std::fabs(d) < (row.bytes ? double(1 << 20) : 1e-6);
        change = same ? "same" : (d > 0 ? "+" : "−") + f(std::fabs(d));
        if (!same && row.before > 0) change += fmt::format(" ({:+.0f}%)", 100 * d / row.before);
      }
      t.rows.push_back({"  " + row.what, row.has_before ? f(row.before) : "—", f(row.now), change});
    }
    out += render(t);
    out += fmt::format("  {} on {} GPU(s) of {}: peak {} — {}\n", r.plan.model.name, r.plan.cluster.gpus,
                       gib(r.memory.gpu_memory_bytes), gib(r.memory.peak_bytes), r.memory.fits ? "fits" : "does not fit");
    out += "  formula: " + r.formula + "\n  for this model: " + r.worked + "\n  " + r.explanation + "\n";
  }
  return out + "\n(GiB = 2^30 B, GB = 1e9 B; the planner's numbers: `paraplan plan` on each step's plan gives the same.)\n";
}

}  // namespace paraplan::teach

// Rows of the run store as measurements a fit can use, and the time model's prediction of each.
#include "paraplan/measurements.hpp"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "paraplan/calibration.hpp"
#include "paraplan/comm.hpp"
#include "paraplan/error.hpp"
#include "paraplan/op_time.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/prepared_run.hpp"
#include "paraplan/presets.hpp"
#include "paraplan/timing.hpp"

namespace paraplan::planner {

namespace {

Precision precision_of(const std::string& dtype) {
  if (dtype == "bf16") return Precision::bf16;
  if (dtype == "fp16") return Precision::fp16;
  if (dtype == "fp8") return Precision::fp8;
  return Precision::fp32;
}

bool is_collective(const std::string& kind) {
  return kind == "all_reduce" || kind == "all_gather" || kind == "reduce_scatter" || kind == "all_to_all" ||
         kind == "send_recv";
}

// The stored plan without its calibration (a profile file named by path may be gone; the fit replaces
// the calibration anyway), and the calibration it named.
Plan stored_plan(const std::string& plan_json, std::string& calibration) {
  nlohmann::json doc = nlohmann::json::parse(plan_json);
  if (doc.contains("cluster") && doc["cluster"].is_object()) {
    if (doc["cluster"].contains("calibration") && doc["cluster"]["calibration"].is_string())
      calibration = doc["cluster"]["calibration"].get<std::string>();
    doc["cluster"].erase("calibration");
  }
  return plan_from_json(doc);
}

// Bytes as the probes' sizes read best: whole KiB / MiB / GiB (2^10, 2^20, 2^30) where they are.
std::string bytes_text(double b) {
  std::ostringstream s;
  if (b >= 1 << 30)
    s << b / (1 << 30) << " GiB";
  else if (b >= 1 << 20)
    s << b / (1 << 20) << " MiB";
  else if (b >= 1 << 10)
    s << b / (1 << 10) << " KiB";
  else
    s << b << " B";
  return s.str();
}

std::string probe_label(const ProbeResult& r) {
  std::ostringstream s;
  s << r.kind;
  if (r.kind == "gemm")
    s << " " << r.dtype << " " << r.m << "x" << r.n << "x" << r.k;
  else if (is_collective(r.kind) && spans_nodes(r))
    s << " " << bytes_text(r.bytes) << ", " << r.ranks / r.ranks_per_node << " nodes x " << r.ranks_per_node;
  else if (is_collective(r.kind))
    s << " " << bytes_text(r.bytes) << " over " << r.ranks << " ranks";
  else
    s << " " << bytes_text(r.bytes);
  return s.str();
}

// How --use and the reports spell each kind of measurement.
constexpr std::pair<MeasurementKind, const char*> kKindNames[] = {
    {MeasurementKind::run, "runs"}, {MeasurementKind::imported, "imported"}, {MeasurementKind::probe, "probes"}};

}  // namespace

bool spans_nodes(const ProbeResult& r) { return r.ranks_per_node > 0 && r.ranks_per_node < r.ranks; }

CommKind collective_of(const std::string& kind) {
  if (kind == "all_gather") return CommKind::all_gather;
  if (kind == "reduce_scatter") return CommKind::reduce_scatter;
  if (kind == "all_to_all") return CommKind::all_to_all;
  if (kind == "send_recv") return CommKind::send_recv;
  return CommKind::all_reduce;
}

const char* to_string(MeasurementKind k) {
  for (const auto& [kind, name] : kKindNames)
    if (kind == k) return name;
  return "?";
}

std::set<MeasurementKind> parse_measurement_kinds(const std::string& list, const std::string& field) {
  std::set<MeasurementKind> out;
  std::stringstream ss(list);
  std::string word;
  while (std::getline(ss, word, ',')) {
    const auto* named = std::find_if(std::begin(kKindNames), std::end(kKindNames),
                                     [&](const auto& n) { return word == n.second; });
    if (named == std::end(kKindNames))
      throw PlanError(field, "\"" + word + "\"", "must be a comma-separated list of runs, probes, imported");
    out.insert(named->first);
  }
  if (out.empty()) throw PlanError(field, "\"" + list + "\"", "names no kind of measurement (runs, probes, imported)");
  return out;
}

namespace {

// The median over steps (after the first, unless it is the only one) of each step's slowest rank.
std::optional<double> median_of_slowest(const std::map<int, double>& slowest) {
  std::vector<double> t;
  for (const auto& [step, s] : slowest)
    if (step > 1 || slowest.size() == 1) t.push_back(s);
  if (t.empty()) return std::nullopt;
  std::sort(t.begin(), t.end());
  const size_t n = t.size();
  return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

// "run 9: a repeat of run 3's plan on the same machine and build, 12.41 ms a step against 10.10 ms: the
// fastest repeat is kept"
std::string fmt_repeat(const Measurement& slower, const Measurement& kept) {
  char times[96];
  std::snprintf(times, sizeof times, "%.2f ms a step against %.2f ms", 1e3 * slower.measured_s, 1e3 * kept.measured_s);
  return slower.id + ": a repeat of " + kept.id + "'s plan on the same machine and build, " + times +
         ": the fastest repeat is kept";
}

}  // namespace

std::string row_kind(const Measurement& m) {
  return std::string(to_string(m.kind)) + (is_part_of_step(m) ? " " + m.what : "");
}

bool is_part_of_step(const Measurement& m) { return m.kind == MeasurementKind::run && m.what != "step"; }

std::optional<double> median_step_seconds(const std::vector<StepRecord>& steps) {
  std::map<int, double> slowest;  // step -> slowest rank's time
  for (const StepRecord& s : steps) slowest[s.step] = std::max(slowest[s.step], s.step_s);
  return median_of_slowest(slowest);
}

namespace {

// The median over steps of the slowest rank's seconds in the op classes `counts` takes.
template <class Counts>
std::optional<double> median_of_classes(const std::vector<OpTimeRecord>& ops, Counts counts) {
  std::map<std::pair<int, int>, double> work;  // (step, rank) -> seconds
  for (const OpTimeRecord& o : ops)
    if (counts(o.op_class)) work[{o.step, o.rank}] += o.seconds;
  std::map<int, double> slowest;
  for (const auto& [key, s] : work) slowest[key.first] = std::max(slowest[key.first], s);
  return median_of_slowest(slowest);
}

}  // namespace

std::optional<double> median_compute_seconds(const std::vector<OpTimeRecord>& ops) {
  return median_of_classes(ops, [](const std::string& c) { return c.rfind("comm.", 0) != 0; });
}

std::optional<double> median_optimizer_seconds(const std::vector<OpTimeRecord>& ops) {
  return median_of_classes(ops, [](const std::string& c) { return c == "optimizer"; });
}

Plan device_plan(const std::string& device, const std::string& dtype) {
  Plan p;
  p.model = model_preset("tiny-llama");
  p.cluster.gpu = hardware_preset(device);
  p.cluster.gpus = 1;
  p.cluster.gpus_per_node = 1;
  p.training.precision = precision_of(dtype);
  return p;
}

MeasurementSet keep_fastest_repeats(MeasurementSet set) {
  // What makes two runs repeats of one another: plan, machine, software and build.
  auto key = [](const Measurement& m) {
    return plan_to_json(m.plan).dump() + "\n" + m.hardware + "\n" + m.software + "\n" + m.revision;
  };
  std::map<std::string, size_t> fastest;  // key -> index of its fastest step row
  std::map<int64_t, std::string> key_of;  // executor run id -> its key
  for (size_t i = 0; i < set.rows.size(); ++i) {
    const Measurement& m = set.rows[i];
    if (m.kind != MeasurementKind::run || m.what != "step") continue;
    const auto [it, first] = fastest.emplace(key_of[m.run_id] = key(m), i);
    if (!first && m.measured_s < set.rows[it->second].measured_s) it->second = i;
  }
  MeasurementSet out;
  out.skipped = std::move(set.skipped);
  for (const Measurement& m : set.rows) {
    const auto k = m.kind == MeasurementKind::run ? key_of.find(m.run_id) : key_of.end();
    const Measurement& kept = k == key_of.end() ? m : set.rows[fastest.at(k->second)];
    if (kept.run_id == m.run_id)
      out.rows.push_back(m);
    else if (m.what == "step")
      out.skipped.push_back(fmt_repeat(m, kept));
  }
  return out;
}

MeasurementSet read_measurements(const Store& store, const std::set<MeasurementKind>& use) {
  MeasurementSet out;
  const bool runs = use.count(MeasurementKind::run) > 0, imported = use.count(MeasurementKind::imported) > 0;
  if (runs || imported) {
    for (const RunRecord& r : store.runs()) {
      const bool is_imported = r.origin == "imported";
      if (is_imported ? !imported : !runs) continue;
      const std::string id = std::string(is_imported ? "imported run " : "run ") + std::to_string(r.id);
      if (r.status != RunStatus::succeeded) {
        out.skipped.push_back(id + ": " + to_string(r.status) + (r.error.empty() ? "" : " (" + r.error + ")"));
        continue;
      }
      Measurement m;
      m.kind = is_imported ? MeasurementKind::imported : MeasurementKind::run;
      m.id = is_imported ? id + " (" + r.source + ")" : id;
      m.what = "step";
      m.run_id = r.id;
      m.label = r.run.name;
      m.hardware = r.run.hardware;
      m.software = r.run.software;
      m.revision = r.run.git_revision;
      try {
        m.plan = stored_plan(r.run.plan_json, m.calibration);
        if (m.calibration.empty()) m.calibration = m.plan.cluster.calibration.name;
      } catch (const std::exception& e) {
        out.skipped.push_back(id + ": its plan does not read back (" + std::string(e.what()) + ")");
        continue;
      }
      if (is_imported) {
        if (!r.measured_step_s || *r.measured_step_s <= 0) {
          out.skipped.push_back(id + ": no measured step time");
          continue;
        }
        m.measured_s = *r.measured_step_s;
      } else {
        m.plan.training.framework = Framework::paraplan;  // the executor's own kernels (exec::as_executor_plan)
        if (r.run.world_size != m.plan.parallel.gpus()) {
          out.skipped.push_back(id + ": ran " + std::to_string(r.run.world_size) + " of the plan's " +
                                std::to_string(m.plan.parallel.gpus()) + " ranks (--fake-rank: no communication)");
          continue;
        }
        const auto step = median_step_seconds(store.steps(r.id));
        if (!step || *step <= 0) {
          out.skipped.push_back(id + ": no steps stored");
          continue;
        }
        m.measured_s = *step;
      }
      m.device = m.plan.cluster.gpu.id;
      // An executor run's time outside collectives as a row of its own: it tells the compute parameters
      // (GEMM, per-kernel and host costs, shared cores) from the communication ones; and its optimizer
      // step's: it tells the update's bandwidth from the rest of the compute.
      const std::vector<OpTimeRecord> ops = is_imported ? std::vector<OpTimeRecord>{} : store.op_times(r.id);
      const double compute = median_compute_seconds(ops).value_or(0);
      const double optimizer = median_optimizer_seconds(ops).value_or(0);
      out.rows.push_back(m);
      for (const auto& [what, seconds] : {std::pair{"compute", compute}, std::pair{"optimizer", optimizer}}) {
        if (seconds <= 0) continue;
        Measurement part = m;
        part.what = what;
        part.id += std::string(" ") + what;
        part.label += std::string(" (") + what + ")";
        part.measured_s = seconds;
        out.rows.push_back(std::move(part));
      }
    }
  }
  if (use.count(MeasurementKind::probe)) {
    for (const ProbeRecord& p : store.probes()) {
      int seq = 0;
      for (const ProbeResult& r : store.probe_results(p.id)) {
        ++seq;
        const std::string id = "probe " + std::to_string(p.id) + " #" + std::to_string(seq);
        if (!(r.seconds > 0)) {
          out.skipped.push_back(id + ": no time measured");
          continue;
        }
        Measurement m;
        m.kind = MeasurementKind::probe;
        m.id = id;
        m.what = r.kind;
        m.device = p.device;
        m.probe = r;
        m.measured_s = r.seconds;
        m.label = probe_label(r);
        m.calibration = "none";
        m.hardware = p.hardware;
        m.software = p.software;
        try {
          m.plan = device_plan(p.device, r.dtype);
        } catch (const PlanError& e) {
          out.skipped.push_back(id + ": " + e.what());
          continue;
        }
        out.rows.push_back(std::move(m));
      }
    }
  }
  return out;
}

double predict(const Measurement& m, const Calibration& cal) {
  Plan p = m.plan;
  p.cluster.calibration = cal;
  return predict_on(p, m);
}

namespace {

// The part of a step estimate that a run row measured.
double run_value(const StepEstimate& e, const Measurement& m) {
  if (m.what == "optimizer") return e.optimizer_s;  // the optimizer step alone
  // The compute row is the time outside collectives: everything of the step but its exposed
  // communication, the host's time included (on CPU workers it is all added; on GPUs what the device
  // does not hide).
  return m.what == "compute" ? e.step_s - e.exposed_comm_s : e.step_s;
}

}  // namespace

PreparedRun::PreparedRun(const Plan& plan)
    : ctx(make_context(plan, ContextParts::memory)), flops(step_flops(plan)), layers(stage_layers(plan)) {}

double predict_on(const Plan& plan, const Measurement& m, PreparedRun& prepared) {
  retime_context(prepared.ctx, plan);
  return run_value(estimate_time(plan, prepared.ctx, prepared.flops, prepared.layers), m);
}

double predict_on(const Plan& p, const Measurement& m) {
  const Calibration& cal = p.cluster.calibration;
  if (m.kind != MeasurementKind::probe) return run_value(estimate_time(p), m);
  const ProbeResult& r = m.probe;
  if (r.kind == "gemm") {
    const double e = gemm_efficiency(p, r.m, r.n, r.k);
    return e > 0 ? 2 * r.m * r.n * r.k / (p.cluster.gpu.peak_flops(p.training.precision) * e) : 0;
  }
  if (is_collective(r.kind) && spans_nodes(r)) {
    // A group across nodes, as a data-parallel group of that many ranks is (comm.cpp group_link: the NICs
    // of the group's ranks in a node at once, the inter-node latencies).
    Plan q = p;
    q.cluster.gpus = r.ranks;
    q.cluster.gpus_per_node = r.ranks_per_node;
    q.parallel = ParallelPlan{};
    q.parallel.dp = r.ranks;
    return collective_time(collective_of(r.kind), r.bytes, r.ranks, group_link(q, Axis::dp_cp));
  }
  if (is_collective(r.kind)) {
    // Local ranks: the link inside a node (comm.hpp's group_link for a group within one node), at its
    // full bandwidth: the probe's ranks only communicate, so no computing peer holds the cores that its
    // transfers need (cpu_link_share is for training steps). The waits for a peer off its core stay: with
    // 4 ranks on 2 cores a 256-byte all-gather took 517 us against 76 us over 2 ranks. At 8 MiB the
    // 4-rank all-gather moved each rank's bytes 1.2x slower than the 2-rank one, not 2x (the sweep's
    // probe of 2026-12-07; on another VM the probe's 4-rank transfers looked core-bound: the caveat in
    // docs/calibration.md, "Transfers and the cores").
    const Efficiency e = effective_efficiency(p.cluster.gpu, cal);
    const Link link{p.cluster.gpu.intra_node_bytes_per_s, e.intra_node,
                    e.intra_node_latency_s, e.intra_node_hop_s + peer_wait_per_step(p.cluster.gpu, e, r.ranks), false};
    return collective_time(collective_of(r.kind), r.bytes, r.ranks, link);
  }
  return memory_bound_time(p, r.bytes);  // memory and kernel probes
}

}  // namespace paraplan::planner

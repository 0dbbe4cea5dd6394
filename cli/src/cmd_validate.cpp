// paraplan validate: predict every published run in data/validation and compare.
#include <fmt/format.h>

#include <cmath>

#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "commands.hpp"
#include "format.hpp"
#include "paraplan/calibration.hpp"
#include "paraplan/embedded_data.hpp"
#include "paraplan/error.hpp"
#include "paraplan/fit.hpp"
#include "paraplan/held_out.hpp"
#include "paraplan/timing.hpp"
#include "paraplan/validation.hpp"

namespace paraplan::cli {

using namespace planner;

namespace {

struct ValidateOptions {
  bool json = false;
  bool all_rows = false;
  std::string sources;  // comma-separated; empty: every source
  std::string calibration;  // in place of every row's own profile; empty: keep them
  bool held_out = false;
  bool per_layer = false;
};

// Sources of more rows than this print their errors by plan shape instead of row by row (--rows: all).
constexpr int kRowsInline = 50;

std::vector<PublishedRun> chosen_runs(const std::string& list) {
  std::vector<PublishedRun> runs = all_validation_runs();
  if (list.empty()) return runs;
  std::set<std::string> known, wanted;
  for (const auto& r : runs) known.insert(r.source);
  std::stringstream in(list);
  for (std::string s; std::getline(in, s, ',');) {
    if (!known.count(s)) {
      std::string names;
      for (const auto& k : known) names += (names.empty() ? "" : ", ") + k;
      throw PlanError("--source", s, "is not a validation source; the sources are: " + names);
    }
    wanted.insert(s);
  }
  std::erase_if(runs, [&](const PublishedRun& r) { return !wanted.count(r.source); });
  return runs;
}

nlohmann::json to_json(const std::vector<ValidationRow>& rows, const std::vector<SourceSummary>& sums,
                       const std::vector<GroupBias>& groups) {
  nlohmann::json j = {{"rows", nlohmann::json::array()},
                      {"sources", nlohmann::json::array()},
                      {"groups", nlohmann::json::array()}};
  for (const auto& r : rows) {
    const auto& p = r.run.plan;
    j["rows"].push_back({{"source", r.run.source},
                         {"model", r.run.model},
                         {"gpus", p.cluster.gpus},
                         {"tp", p.parallel.tp},
                         {"pp", p.parallel.pp},
                         {"dp", p.parallel.dp},
                         {"micro_batch", p.training.micro_batch},
                         {"virtual_stages", p.parallel.virtual_stages},
                         {"recompute", to_string(p.training.recompute)},
                         {"sequence_parallel", p.parallel.sequence_parallel},
                         {"calibration", p.cluster.calibration.name},
                         {"published_step_s", r.published_step_s},
                         {"predicted_step_s", r.predicted_step_s},
                         {"error", r.error}});
  }
  for (const auto& s : sums)
    j["sources"].push_back({{"source", s.source},
                            {"rows", s.rows},
                            {"mean_abs_error", s.mean_abs_error},
                            {"p90_abs_error", s.p90_abs_error},
                            {"max_abs_error", s.max_abs_error},
                            {"mean_error", s.mean_error}});
  for (const auto& g : groups)
    j["groups"].push_back({{"source", g.source},
                           {"group", g.group},
                           {"rows", g.rows},
                           {"mean_error", g.mean_error},
                           {"mean_abs_error", g.mean_abs_error}});
  return j;
}

void print_rows(const std::vector<ValidationRow>& rows, const std::set<std::string>& inline_sources) {
  fmt::print("{:<18} {:<15} {:>5} {:>10} {:>3} {:>9} {:>3} {:>13} {:>13} {:>8}\n", "source", "model", "GPUs",
             "tp/pp/dp", "mb", "recompute", "sp", "published (s)", "predicted (s)", "error");
  for (const auto& r : rows) {
    if (!inline_sources.count(r.run.source)) continue;
    const auto& p = r.run.plan;
    fmt::print("{:<18} {:<15} {:>5} {:>10} {:>3} {:>9} {:>3} {:>13.3f} {:>13.3f} {:>+7.1f}%\n", r.run.source,
               r.run.model, p.cluster.gpus, fmt::format("{}/{}/{}", p.parallel.tp, p.parallel.pp, p.parallel.dp),
               p.training.micro_batch, to_string(p.training.recompute), p.parallel.sequence_parallel ? "yes" : "no",
               r.published_step_s, r.predicted_step_s, 100 * r.error);
  }
  fmt::print("\n");
}

// Whether the built-in profile `name` was fitted with Huber's weights (its file's fit.estimator,
// `paraplan calibrate --robust`) rather than by least squares.
bool fitted_robustly(const std::string& name) {
  for (const auto& f : embedded::calibration())
    if (f.id && name == f.id)
      return nlohmann::json::parse(f.text).value("fit", nlohmann::json::object()).value("estimator", "") == kHuberEstimator;
  return false;
}

// One source (--source NAME): leave-one-row-out within it, each row predicted by the GEMM efficiency
// fitted on the source's other rows, as the source's profile was fitted.
int print_rows_held_out(const std::vector<PublishedRun>& runs) {
  FitOptions options;
  options.fields = {"gemm"};
  options.robust = fitted_robustly(runs.front().plan.cluster.calibration.name);
  const std::string how = options.robust ? "Huber's robust fit" : "least squares";
  fmt::print("fitting the GEMM efficiency on all {} rows of {}, then once per row left out...\n", runs.size(),
             runs.front().source);
  const std::vector<RowHeldOut> rows = leave_one_row_out(runs, options);
  fmt::print("{:<15} {:>5} {:>10} {:>13} {:>13} {:>8} {:>15} {:>9}\n", "model", "GPUs", "tp/pp/dp", "published (s)",
             "in fit (s)", "error", "held out (s)", "error");
  double in_fit = 0, held = 0;
  for (const RowHeldOut& r : rows) {
    const Plan& p = r.run.plan;
    fmt::print("{:<15} {:>5} {:>10} {:>13.3f} {:>13.3f} {:>+7.1f}% {:>15.3f} {:>+8.1f}%\n", r.run.model, p.cluster.gpus,
               fmt::format("{}/{}/{}", p.parallel.tp, p.parallel.pp, p.parallel.dp), r.published_step_s,
               r.in_fit_step_s, 100 * r.in_fit_error, r.held_out_step_s, 100 * r.held_out_error);
    in_fit += std::fabs(r.in_fit_error);
    held += std::fabs(r.held_out_error);
  }
  const double n = static_cast<double>(rows.size());
  fmt::print("mean |error|: in fit {}, held out {}\n", percent(in_fit / n, 2), percent(held / n, 2));
  fmt::print("(held out: each row predicted by the GEMM efficiency fitted on the other rows alone, {} on log "
             "errors, as the source's profile \"{}\")\n",
             how, runs.front().plan.cluster.calibration.name);
  return 0;
}

// Leave-one-source-out over the two papers' tables (or --source): the "published" profile's one
// parameter, the GEMM efficiency, fitted on the other sources and predicting this one; with one source
// named, leave-one-row-out within it.
int print_held_out(const std::string& sources) {
  std::vector<PublishedRun> runs = sources.empty() ? published_runs() : chosen_runs(sources);
  std::set<std::string> names;
  for (const PublishedRun& r : runs) names.insert(r.source);
  if (names.size() == 1) return print_rows_held_out(runs);
  fmt::print("fitting the GEMM efficiency on all {} rows, then once per source left out...\n", runs.size());
  const std::vector<SourceHeldOut> rows = leave_one_source_out(runs, {"gemm"});
  fmt::print("{:<18} {:>5} {:>20} {:>22} {:>14}\n", "source", "rows", "in-fit mean |error|", "held-out mean |error|",
             "held-out max");
  for (const auto& r : rows)
    fmt::print("{:<18} {:>5} {:>20} {:>22} {:>14}\n", r.source, r.rows, percent(r.in_fit_mean_abs_error, 2),
               percent(r.held_out_mean_abs_error, 2), percent(r.held_out_max_abs_error, 2));
  fmt::print("(held out: the GEMM efficiency fitted on the other sources' rows alone, least squares on log errors)\n");
  return 0;
}

// The k-fold held-out errors a built-in profile's file records for its imported rows (`paraplan calibrate
// --folds`): null when it records none.
nlohmann::json profile_cross_validation(const std::string& name) {
  for (const auto& f : embedded::calibration())
    if (f.id && name == f.id) {
      const nlohmann::json doc = nlohmann::json::parse(f.text);
      const nlohmann::json cv = doc.value("cross_validation", nlohmann::json::object());
      if (cv.contains("held_out") && cv["held_out"].contains("imported"))
        return {{"folds", cv.value("folds", 0)}, {"errors", cv["held_out"]["imported"]}};
    }
  return nullptr;
}

// Below the fit errors of the default output: each source's prediction error, the figure to quote. The
// papers: leave-one-source-out (the GEMM efficiency fitted on the other paper); a source whose profile
// was fitted on it: that fit's k-fold cross-validation, as its file records it; a source in no fit: its
// errors above are already predictions.
void print_held_out_summary(const std::vector<SourceSummary>& sums, const std::vector<PublishedRun>& runs) {
  const std::vector<PublishedRun> paper_runs = published_runs();
  std::set<std::string> papers;
  for (const PublishedRun& r : paper_runs) papers.insert(r.source);
  std::map<std::string, std::string> profile;  // source -> its rows' profile
  for (const PublishedRun& r : runs) profile[r.source] = r.plan.cluster.calibration.name;
  std::map<std::string, SourceHeldOut> loso;
  size_t papers_here = 0;
  for (const auto& s : sums) papers_here += papers.count(s.source);
  if (papers_here == papers.size())
    for (const SourceHeldOut& h : leave_one_source_out(paper_runs, {"gemm"})) loso[h.source] = h;
  fmt::print("\nheld out (prediction errors: rows the fit did not see; the accuracy to quote):\n");
  for (const auto& s : sums) {
    const std::string head = fmt::format("{:<18} {:>4} rows: ", s.source, s.rows);
    if (loso.count(s.source)) {
      const SourceHeldOut& h = loso.at(s.source);
      fmt::print("{}mean |error| {}, max {} (GEMM efficiency fitted on the other paper alone)\n", head,
                 percent(h.held_out_mean_abs_error, 2), percent(h.held_out_max_abs_error, 2));
      continue;
    }
    if (papers.count(s.source)) {
      fmt::print("{}with both papers' rows: paraplan validate --held-out\n", head);
      continue;
    }
    const nlohmann::json cv = profile_cross_validation(profile[s.source]);
    // A profile fitted on another GPU's rows (the H100 profile on the B200 rows) never saw these.
    // Rows of a later release than the profile's fit (mbridge-h100-26.04) never were in it either.
    std::string other_gpu;
    bool later_release = false;
    for (const PublishedRun& r : runs) {
      if (r.source != s.source) continue;
      if (fitted_on_another_gpu(r.plan.cluster.gpu, r.plan.cluster.calibration))
        other_gpu = r.plan.cluster.calibration.device;
      later_release = later_release || r.in_no_fit;
    }
    if (!other_gpu.empty()) {
      fmt::print("{}in no fit: the errors above are predictions (\"{}\", fitted on {})\n", head,
                 profile[s.source], other_gpu);
    } else if (later_release) {
      fmt::print("{}in no fit: the errors above are predictions (\"{}\", fitted on an earlier release's rows)\n",
                 head, profile[s.source]);
    } else if (cv.is_null()) {
      fmt::print("{}profile \"{}\" records no cross-validation\n", head, profile[s.source]);
    } else {
      const nlohmann::json& e = cv["errors"];
      const int folds = cv["folds"].get<int>();
      fmt::print("{}mean |error| {}, p90 {}, max {} ({} of \"{}\"{})\n", head,
                 percent(e["mean_abs_error"].get<double>(), 2), percent(e["p90_abs_error"].get<double>(), 2),
                 percent(e["max_abs_error"].get<double>(), 2),
                 folds == e["rows"].get<int>() ? std::string("leave-one-out") : fmt::format("{}-fold cross-validation", folds),
                 profile[s.source], fitted_robustly(profile[s.source]) ? ", Huber's fit" : "");
    }
  }
}

// Korthikanti Table 4: one layer's forward and backward, published against predicted, and each mode's
// cost against the baseline's (what the paper's "overhead" column says).
int print_per_layer(const Calibration* cal) {
  const std::vector<LayerTimeRow> rows = korthikanti_table4(cal);
  fmt::print("One layer of GPT-22B (tp 8, sequence 2048, micro-batch 4, A100 80GB), Korthikanti et al. 2022 Table 4:\n");
  fmt::print("{:<30} {:>17} {:>17} {:>17} {:>19}\n", "mode", "forward (ms)", "backward (ms)", "total (ms)",
             "vs baseline");
  fmt::print("{:<30} {:>17} {:>17} {:>17} {:>19}\n", "", "paper / model", "paper / model", "paper / model",
             "paper / model");
  const double base_paper = rows.front().published_fwd_s + rows.front().published_bwd_s;
  const double base_model = rows.front().predicted_fwd_s + rows.front().predicted_bwd_s;
  double sum = 0;
  for (const LayerTimeRow& r : rows) {
    const double paper = r.published_fwd_s + r.published_bwd_s, model = r.predicted_fwd_s + r.predicted_bwd_s;
    sum += std::fabs(model / paper - 1);
    fmt::print("{:<30} {:>8.2f} / {:<6.2f} {:>8.2f} / {:<6.2f} {:>8.2f} / {:<6.2f} {:>9} / {:<7}\n", r.mode,
               1e3 * r.published_fwd_s, 1e3 * r.predicted_fwd_s, 1e3 * r.published_bwd_s, 1e3 * r.predicted_bwd_s,
               1e3 * paper, 1e3 * model, fmt::format("{:+.1f}%", 100 * (paper / base_paper - 1)),
               fmt::format("{:+.1f}%", 100 * (model / base_model - 1)));
  }
  fmt::print("mean |error| of the layer's total: {} (profile \"{}\"; these rows are in no fit)\n",
             percent(sum / static_cast<double>(rows.size()), 2), cal ? cal->name : "published");
  return 0;
}

}  // namespace

Command add_validate_command(CLI::App& app) {
  auto [sub, o] = subcommand<ValidateOptions>(app, "validate", R"(Predict the step time of every published training run in data/validation and compare:
  narayanan21-t1    Narayanan et al. 2021 Table 1 (GPT 1.7B-1T, 32-3,072 A100s)
  korthikanti22-t5  Korthikanti et al. 2022 Table 5 (GPT 22B-1T, selective and full recompute)
  vtrain-single     vTrain's 1,440 measured single-node Megatron-LM runs (GPT hidden 1024/2048, 2-8 A100s)
  mbridge-h100      Megatron-Bridge 25.11 performance summary, DGX-H100 (LLaMA 3 8B-405B, GPT-OSS, Qwen3 MoE; FP8)
  mbridge-b200      the same summary's DGX-B200 rows
  mbridge-gb200     its DGX-GB200 rows (NVL72 racks; the NVLink domain a job holds as its gpus_per_node)
  mbridge-h100-26.04  the DGX-H100 rows of the 26.04 summary, five months later (in no fit)
Each row is predicted with the calibration profile its source names (data/calibration: "published" for
the two papers, "vtrain-a100" for vTrain, "mbridge-h100" for every Megatron-Bridge system); those
profiles were fitted on these same rows (the B200, GB200 and 26.04 rows excepted: the H100 fit of 25.11
predicts them), so the errors per row are fit errors, not prediction errors. Prints each row (sources of more than 50 rows: the
error by plan shape instead; --rows prints them all), per source the mean, p90 and max |error| and the
mean signed error (negative: predicted too fast), then per source the held-out error, the one to quote:
the two papers each predicted by the GEMM efficiency fitted on the other (leave-one-source-out), vTrain
and the H100 rows by their profile's own cross-validation (its file's: 5-fold, and leave-one-out), the
B200, GB200 and 26.04 rows in no fit. docs/validation.md explains each.
--calibration NAME|FILE predicts every row with that profile instead (e.g. a profile of your own from
`paraplan calibrate`, or "none": the hardware's datasheet values alone). Examples:
  paraplan validate
  paraplan validate --source vtrain-single --json > vtrain.json
  paraplan validate --calibration none
  paraplan validate --held-out                  # each paper predicted by a fit on the other
  paraplan validate --held-out --source mbridge-h100   # each row predicted by a fit on the other rows
  paraplan validate --per-layer                 # one layer's forward/backward per recompute mode)");
  sub->add_flag("--json", o->json, "print JSON: rows, per-source summaries and per-shape biases");
  sub->add_flag("--rows", o->all_rows, "print every row, also of the large sources");
  sub->add_option("--source", o->sources, "only these sources, comma-separated (narayanan21-t1,korthikanti22-t5,vtrain-single,mbridge-h100,mbridge-b200,mbridge-gb200,mbridge-h100-26.04)");
  sub->add_flag("--held-out", o->held_out,
                "prediction errors instead: each source predicted by the GEMM efficiency fitted on the other "
                "sources (leave-one-source-out; default sources: the two papers' tables); with one --source, "
                "each of its rows predicted by the fit on its other rows (leave-one-out)");
  sub->add_flag("--per-layer", o->per_layer,
                "one layer of GPT-22B under each recompute / sequence-parallel mode against Korthikanti et al. "
                "2022 Table 4 (forward, backward, and each mode's cost against the baseline)");
  sub->add_option("--calibration", o->calibration,
                  "predict every row with this time-model calibration: a built-in name (none, published, "
                  "vtrain-a100, ...) or a profile file from `paraplan calibrate`; default: each source's own")
      ->type_name("NAME|FILE");
  return {sub, [o] {
            if (o->held_out) return print_held_out(o->sources);
            std::optional<Calibration> cal;
            if (!o->calibration.empty()) cal = load_calibration(o->calibration, "--calibration");
            if (o->per_layer) return print_per_layer(cal ? &*cal : nullptr);
            const std::vector<PublishedRun> runs = chosen_runs(o->sources);
            const std::vector<ValidationRow> rows = validate_runs(runs, cal ? &*cal : nullptr);
            const std::vector<SourceSummary> sums = summarize(rows);
            std::vector<GroupBias> groups = bias_by_shape(rows);
            std::set<std::string> inline_sources;
            for (const auto& s : sums)
              if (o->all_rows || s.rows <= kRowsInline) inline_sources.insert(s.source);
            // Shape groups only where a source varies the shape over many rows.
            std::erase_if(groups, [&](const GroupBias& g) { return inline_sources.count(g.source) > 0; });
            if (o->json) {
              std::cout << to_json(rows, sums, groups).dump(2) << "\n";
              return 0;
            }
            if (!inline_sources.empty()) print_rows(rows, inline_sources);
            if (!groups.empty()) {
              fmt::print("{:<18} {:<16} {:>5} {:>12} {:>12}\n", "source", "shape", "rows", "mean error", "mean |error|");
              for (const auto& g : groups)
                fmt::print("{:<18} {:<16} {:>5} {:>+11.1f}% {:>11.1f}%\n", g.source, g.group, g.rows, 100 * g.mean_error,
                           100 * g.mean_abs_error);
              fmt::print("\n");
            }
            for (const auto& s : sums)
              fmt::print("{:<18} {:>4} rows: mean |error| {}, p90 {}, max {}, mean error {:+.1f}%\n", s.source, s.rows,
                         percent(s.mean_abs_error, 2), percent(s.p90_abs_error, 2), percent(s.max_abs_error, 2),
                         100 * s.mean_error);
            if (cal)
              fmt::print("(every row predicted with calibration {}. Narayanan rows publish TFLOP/s per GPU; their step\n"
                         "time is derived with the paper's Eq. 3 FLOPs: t = F / (X * GPUs).)\n", cal->name);
            else
              fmt::print("(fit errors: each source's profile was fitted on its rows, except mbridge-b200, mbridge-gb200\n"
                         "and mbridge-h100-26.04, predicted by the H100 fit of 25.11. Narayanan rows publish TFLOP/s per\n"
                         "GPU; their step time is derived with the paper's Eq. 3 FLOPs: t = F / (X * GPUs); Megatron-Bridge\n"
                         "rows publish tokens/s per GPU: t = GBS x seq / (tokens/s/GPU x GPUs).)\n");
            if (!cal) print_held_out_summary(sums, runs);
            if (cal && !runs.empty()) print_calibration(runs.front().plan.cluster.gpu, *cal);
            return 0;
          }};
}

}  // namespace paraplan::cli

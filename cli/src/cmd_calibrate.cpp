// paraplan calibrate [--db FILE] [--name NAME] [--use runs,probes,imported] [--gpu ID] [--report]: fits the
// time model's parameters to what the store measured and writes the profile (store + JSON file).
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "calibration_plot.hpp"
#include "commands.hpp"
#include "demo_common.hpp"
#include "format.hpp"
#include "paraplan/calibration_report.hpp"
#include "paraplan/error.hpp"

namespace paraplan::cli {

using namespace planner;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct CalibrateCliOptions {
  std::string db = "runs.sqlite";
  std::string name = "calibrated";
  std::string use = "runs,probes,imported";
  std::string gpu;
  std::string out;  // default NAME.json
  int folds = 5;
  std::string fit;  // --fit: comma-separated parameter names; empty: every one the rows constrain
  bool report = false;
  std::string profile;  // --calibration: report on this profile instead of fitting one
  bool json_out = false;
  std::string description;
  bool no_rows = false;
  bool as_factors = false;
  bool robust = false;
  std::string repeats = "all";  // --repeats: every run a row, or the fastest of a plan's repeats
};


// Written beside, then renamed over: a reader never sees half a file.
void write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    if (!f) throw PlanError("--out", path, "cannot be written");
    f << text;
    if (!f.flush()) throw PlanError("--out", path, "cannot be written (disk full?)");
  }
  fs::rename(tmp, path);
}

// --fit a,b: each a parameter of efficiency_fields().
std::set<std::string> fit_fields(const std::string& list) {
  std::set<std::string> out;
  std::stringstream in(list);
  for (std::string name; std::getline(in, name, ',');) {
    std::string known;
    bool found = false;
    for (const EfficiencyField& f : efficiency_fields()) {
      known += (known.empty() ? "" : ", ") + std::string(f.name);
      found = found || name == f.name;
    }
    if (!found) throw PlanError("--fit", name, "is not a time-model parameter; the parameters are: " + known);
    out.insert(name);
  }
  return out;
}

std::string value_text(double v, const std::string& unit) {
  if (unit == "s") return seconds(v);
  return fmt::format("{:.4g}", v);
}

// A value as value_text writes it, with its unit where value_text gives none (seconds carry theirs).
std::string with_unit(double v, const std::string& unit) {
  return unit == "s" ? value_text(v, unit) : value_text(v, unit) + " " + unit;
}

void print_parameters(const FitResult& fit) {
  fmt::print("{:<22} {:>10} {:>10} {:>10} {:>5}  {:<9} {}\n", "parameter", "datasheet", "value", "+/-1sd", "rows",
             "source", "unit");
  for (const FittedParam& p : fit.params) {
    const std::string unit = p.field->unit;
    fmt::print("{:<22} {:>10} {:>10} {:>10} {:>5}  {:<9} {}\n", p.field->name, value_text(p.datasheet, unit),
               value_text(p.value, unit), p.fitted ? percent(p.rel_sigma) : p.rows ? "not pinned" : "", p.rows, to_string(p.source), unit);
  }
}

std::string summary_text(const json& s, bool p90 = true) {
  const std::string mean = percent(s["mean_abs_error"].get<double>()), median = percent(s["median_abs_error"].get<double>()),
                    max = percent(s["max_abs_error"].get<double>());
  return p90 ? fmt::format("{} / {} / {} / {}", mean, median, percent(s.value("p90_abs_error", 0.0)), max)
             : fmt::format("{} / {} / {}", mean, median, max);
}

void print_errors(const json& report, int folds) {
  // Widths: "runs optimizer" and "1383.8% / 48.3% / 112.4% / 1383.8%" fit.
  fmt::print("\n|predicted / measured - 1|, mean / median / p90 / max:\n{:<14} {:>5}  {:<35} {:<35} {}\n", "rows", "n",
             "before (plan's calibration)", "after (this profile)", folds ? fmt::format("held out ({}-fold)", folds) : "");
  for (const auto& [kind, s] : report["summary"]["step_time"].items())
    fmt::print("{:<14} {:>5}  {:<35} {:<35} {}\n", kind, s["before"]["rows"].get<int>(), summary_text(s["before"]),
               summary_text(s["after"]), s.contains("held_out") ? summary_text(s["held_out"]) : "");
  const json& mem = report["summary"]["memory"];
  if (mem["rows"].get<int>() > 0)
    fmt::print("memory of executor runs (worst rank, {} categories): mean / median / max |error| {} (the same before "
               "and after: calibration moves times only)\n",
               mem["rows"].get<int>(), summary_text(mem, false));
}

void print_rows(const json& report) {
  // "what" fits a probe's longest labels ("all_reduce 512 KiB over 32 ranks", "all_reduce 128 KiB, 4 nodes x 8").
  fmt::print("\n{:<40} {:<34} {:>11} {:>11} {:>8} {:>11} {:>8} {:>11}\n", "row", "what", "measured", "before", "error",
             "after", "error", "held out");
  for (const json& r : report["rows"]) {
    const double m = r["measured_s"].get<double>();
    std::string label = r["label"].get<std::string>();
    if (label.size() > 34) label = label.substr(0, 33) + "~";
    std::string id = r["id"].get<std::string>();
    if (id.size() > 40) id = id.substr(0, 39) + "~";
    fmt::print("{:<40} {:<34} {:>11} {:>11} {:>+7.1f}% {:>11} {:>+7.1f}% {:>11}\n", id, label, seconds(m),
               seconds(r["before_s"].get<double>()), 100 * r["before_error"].get<double>(),
               seconds(r["after_s"].get<double>()), 100 * r["after_error"].get<double>(),
               r.contains("held_out_s") ? seconds(r["held_out_s"].get<double>()) : "");
  }
}

// Memory of every executor run by category, its worst rank: measured against predicted. Calibration
// moves times only, so one prediction serves before and after.
void print_memory(const json& report) {
  bool header = false;
  for (const json& r : report["rows"]) {
    if (!r.contains("memory") || r["memory"].empty()) continue;
    if (!header)
      fmt::print("\nmemory, worst rank (MiB = 2^20 bytes; the same before and after calibration):\n{:<12} {:<12} {:>16} "
                 "{:>16} {:>8}\n", "row", "category", "measured", "predicted", "error");
    header = true;
    for (const json& c : r["memory"]) {
      const double m = c["measured_bytes"].get<double>(), p = c["predicted_bytes"].get<double>();
      fmt::print("{:<12} {:<12} {:>16} {:>16} {:>8}\n", r["id"].get<std::string>(), c["category"].get<std::string>(),
                 mib_unit(m), mib_unit(p), m > 0 ? fmt::format("{:+.1f}%", 100 * (p / m - 1)) : p > 0 ? "+inf" : "");
    }
  }
}

// NAME-report.json, .csv and .png (the PNG when the GUI library was built; write_plot says so otherwise).
void write_report(const std::string& stem, const json& report) {
  write_file(stem + ".json", report.dump(1) + "\n");
  write_file(stem + ".csv", calibration_report_csv(report));
  fmt::print("\nreport data: {0}.json, {0}.csv\n", stem);
  const auto charts = calibration_report_charts(report);
  if (charts.empty())
    fmt::print("no plot: no row to draw\n");
  else
    write_plot(charts, stem + ".png");
}

int run_calibrate(const CalibrateCliOptions& o) {
  if (!fs::exists(o.db))
    throw PlanError("--db", o.db, "no such run store: `paraplan run`, `paraplan probe` and `paraplan import` write one");
  const std::set<MeasurementKind> use = parse_measurement_kinds(o.use);
  Store store(o.db);
  MeasurementSet set = read_measurements(store, use);
  if (o.repeats == "fastest") set = keep_fastest_repeats(std::move(set));
  const std::string base = o.out.empty() ? o.name + ".json" : o.out;

  if (!o.profile.empty()) {  // a report on an existing profile: nothing fitted, nothing stored
    if (!o.report) throw PlanError("--calibration", o.profile, "needs --report (it reports on a profile instead of fitting one)");
    const Calibration cal = load_calibration(o.profile, "--calibration");
    const std::string device = choose_device(set, o.gpu);  // the same device rules as a fit
    const json report = calibration_report(store, evaluate_rows(set, device, cal), cal, device);
    const std::string stem = fs::path(base).replace_extension("").string() + "-report";
    if (o.json_out) {
      write_file(stem + ".json", report.dump(1) + "\n");
      std::cout << report.dump(2) << "\n";
      return 0;
    }
    fmt::print("profile \"{}\" on {} rows of {} from {}, {} skipped\n", cal.name, report["rows"].size(), device, o.db,
               set.skipped.size());
    for (const std::string& s : set.skipped) fmt::print("  skipped {}\n", s);  // failed runs, slower repeats, ...
    print_rows(report);
    print_memory(report);
    print_errors(report, 0);
    write_report(stem, report);
    return 0;
  }

  CalibrateOptions co;
  co.name = o.name;
  co.device = o.gpu;
  co.folds = o.folds;
  co.fit.fields = fit_fields(o.fit);
  co.fit.robust = o.robust;
  co.description = o.description;
  co.rows_in_document = !o.no_rows;
  co.as_factors = o.as_factors;
  co.progress = [](const std::string& line) { fmt::print(stderr, "{}\n", line); };
  const CalibrationOutcome out = calibrate(set, co, o.db);
  json doc = out.document;
  write_file(base, doc.dump(2) + "\n");
  const int64_t id = store.add_calibration(o.name, out.device, doc.dump());
  std::vector<CalibratedRow> rows = out.rows;
  const json report = calibration_report(store, rows, out.profile, out.device);
  const std::string stem = fs::path(base).replace_extension("").string() + "-report";
  if (o.json_out) {
    if (o.report) write_file(stem + ".json", report.dump(1) + "\n");
    std::cout << (o.report ? json{{"profile", doc}, {"report", report}} : doc).dump(2) << "\n";
    return 0;
  }
  fmt::print("calibrated {} from {}: {} row(s) ({}), {} skipped\n", out.device, o.db, out.rows.size(), o.use,
             set.skipped.size());
  for (const std::string& s : set.skipped) fmt::print("  skipped {}\n", s);
  for (const std::string& s : out.fit.dropped) fmt::print("  not fitted: {}\n", s);
  fmt::print("simplex search, then Levenberg-Marquardt{}: {} iteration(s), {}, rms log residual {:.4f}{}\n\n",
             o.robust ? " with Huber's weights" : "", out.fit.iterations,
             out.fit.converged ? "converged" : "stopped at the iteration limit", out.fit.rms_log_residual,
             o.robust ? " (weighted)" : "");
  print_parameters(out.fit);
  // A parameter --fit names that no row moves is left at its datasheet value: say so, not only by its 0 rows.
  for (const FittedParam& p : out.fit.params)
    if (co.fit.fields.count(p.field->name) && p.rows == 0)
      fmt::print("--fit {}: no row's predicted time moves by 0.1 % when it is 10x or 1/10 of the fit's start, {}, "
                 "so these rows do not measure it; it keeps its datasheet value, {}\n",
                 p.field->name, with_unit(p.start, p.field->unit), with_unit(p.datasheet, p.field->unit));
  if (o.report) {
    print_rows(report);
    print_memory(report);
  }
  print_errors(report, out.folds);
  const auto left_out = [&](const std::string& what) {
    return std::any_of(out.rows.begin(), out.rows.end(),
                       [&](const CalibratedRow& r) { return r.m->what == what && !out.fit.used(*r.m); });
  };
  if (left_out("optimizer"))
    fmt::print("runs optimizer: the runs' optimizer steps, shown and not fitted; --fit naming optimizer_memory "
               "with the others fits them (docs/calibration.md, \"The optimizer step on CPU\")\n");
  if (left_out("gemm"))
    fmt::print("probes: the probe's GEMMs are shown and not fitted beside executor runs on a CPU, whose own GEMMs "
               "run slower than the probe's cache-resident ones (docs/calibration.md, \"The probe's GEMMs on CPU\")\n");
  fmt::print("\nprofile \"{}\" written to {} and to {} (calibration {}); use it: --calibration {}\n", o.name, base, o.db,
             id, base);
  if (o.report) write_report(stem, report);
  return 0;
}

}  // namespace

Command add_calibrate_command(CLI::App& app) {
  auto [sub, o] = subcommand<CalibrateCliOptions>(app, "calibrate", R"(Fit the time model's parameters (the GPU's efficiencies, per-kernel and host costs, collective
bandwidth and latency; `paraplan hardware ID` lists them) to what the run store measured: executor
runs (`paraplan run`), probes (`paraplan probe`) and imported published runs (`paraplan import`).
Least squares on log(predicted/measured) by Levenberg-Marquardt; parameters the data do not constrain
keep their datasheet value. Writes the profile to the store and to a JSON file that plan, search,
simulate and validate take with --calibration FILE.json, with the fit's rows, residuals and a k-fold
cross-validated (held-out) error. Some rows are reported and not fitted: executor runs' optimizer
steps (unless --fit names optimizer_memory), and on a CPU with executor runs the probe's GEMMs, which
run faster than a training step's (docs/calibration.md). Examples:
  paraplan calibrate --db runs.sqlite --name cpu-here             # writes cpu-here.json
  paraplan calibrate --db runs.sqlite --use probes --report       # also predicted vs measured per row
  paraplan calibrate --report --calibration cpu-here.json          # report on a profile, fit nothing
  paraplan import data/validation/published-step-time.csv && paraplan calibrate --use imported --gpu a100-80gb
  paraplan calibrate --use imported --gpu h100-sxm-80gb --fit gemm --folds 6   # one parameter, leave-one-out
scripts/calibrate-profiles regenerates the shipped profiles (data/calibration) this way.)");
  sub->add_option("--db", o->db, "run store, a SQLite file (default runs.sqlite)");
  sub->add_option("--name", o->name, "name of the profile (default \"calibrated\")");
  sub->add_option("--use", o->use, "which measurements: a comma-separated subset of runs,probes,imported (default all)");
  sub->add_option("--gpu", o->gpu, "the device to calibrate (a hardware preset id) when the store holds several");
  sub->add_option("--out", o->out, "the profile file to write (default NAME.json)");
  sub->add_option("--folds", o->folds, "k of the k-fold cross-validation (default 5; as many as rows: leave-one-out)")
      ->check(CLI::Range(2, 100));
  sub->add_option("--fit", o->fit,
                  "fit only these parameters, comma-separated (e.g. gemm,kernel_overhead_s; default: every one the "
                  "rows constrain but optimizer_memory): a few published rows pin one or two parameters, not all of "
                  "them. Naming optimizer_memory fits the optimizer step's bandwidth to executor runs' optimizer times "
                  "(docs/calibration.md: right in itself, worse held-out step times on CPU)")
      ->type_name("NAMES");
  sub->add_flag("--robust", o->robust,
                "Huber's robust fit instead of least squares: a row off by more than 1.345 robust standard "
                "deviations of the rows' log errors pulls with a bounded force, so that a few rows with a cost "
                "the model lacks do not drag the rest (the Megatron-Bridge H100 profile; each fold fits so too)");
  sub->add_flag("--report", o->report,
                "print predicted vs measured for every row, before and after (step time, and memory by category for "
                "executor runs), and write NAME-report.json/.csv/.png (the plot when the GUI library was built)");
  sub->add_option("--calibration", o->profile, "with --report: report on this profile (a name or a .json file) instead of fitting");
  sub->add_option("--description", o->description, "the profile's description (what it is for, what it was fitted on)");
  sub->add_flag("--no-rows", o->no_rows, "leave the per-row predictions out of the profile file (the summaries stay)");
  sub->add_flag("--as-factors", o->as_factors,
                "store each fitted parameter as a factor on the device's datasheet value, so that the profile "
                "carries over to other GPUs (a parameter whose datasheet value is 0 stays a value)");
  sub->add_option("--repeats", o->repeats,
                  "runs of the same plan on the same machine and build: \"all\" (default) fits each one; "
                  "\"fastest\" keeps the fastest of them and lists the others as skipped (other work on the machine "
                  "only slows a run: scripts/calibration-sweep runs each plan twice)")
      ->check(CLI::IsMember({"all", "fastest"}));
  sub->add_flag("--json", o->json_out, "print the profile document (with --report: and the report) as JSON");
  return {sub, [o] { return run_calibrate(*o); }};
}

}  // namespace paraplan::cli

// Issue 13's must-show on CPU: a real sweep of training runs (data/calibration/cpu-sweep: tiny to ~100M
// parameters; DP, ZeRO-1/2/3, LoRA, TP with and without SP, PP; 1 to 4 workers), a quick probe, a
// calibration fitted on one half
// of the runs (and the probe) that predicts the other half, which the fit never saw:
//   mean |predicted / measured - 1| of step time <= 10 %, max <= 25 %, both strictly below the
//   uncalibrated error; memory exact (to the byte, as test_runs.cpp), and untouched by calibration.
// Both directions are checked (fit A, predict B; fit B, predict A): the runs of the two halves are
// started in alternation, so a change of the machine's load falls on both. Each run's step time is the
// median over its steps of the slowest rank (measurements.hpp), which one interruption moves less than
// a mean; each plan runs twice, minutes apart, and counts by the faster run (keep_fastest_repeats: other
// work on the machine only slows a run, and on this 2-core machine a run that stretched over a second of
// such work measured up to 50 % slower than its repeats). The figures are printed (ctest -L
// calibration-sweep -V) for docs/calibration.md, with the load (uptime) and one plan measured before and
// after the sweep, which shows how far the machine moved.
//
// It asserts prediction errors, not speed: the thresholds are the issue's. On a machine whose cores other
// work shares, multi-worker step times move with that work from one minute to the next; this test then
// fails with the figures, and docs/calibration.md says what was measured where.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "paraplan/calibrate.hpp"
#include "paraplan/calibration_report.hpp"
#include "paraplan/memory.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/rank_grid.hpp"
#include "paraplan/store.hpp"
#include "paraplan/timing.hpp"
#include "process_util.hpp"
#include "run_util.hpp"

using namespace paraplan::planner;
using namespace paraplan::test;

namespace {

std::vector<std::string> plans(const std::string& half) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(fs::path(PARAPLAN_SOURCE_DIR) / "data/calibration/cpu-sweep"))
    if (e.path().filename().string().rfind(half + "-", 0) == 0) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::string uptime() { return shell("uptime").out; }

// Steps to train a plan for: about two seconds of steps by the uncalibrated prediction, 10 to 400. The
// first steps of a run are slower (allocator, caches): a median over 4 steps of a 3 ms plan still held
// them (tiny dp=2: 8.2 ms outside collectives over 4 steps, 3.5 ms over 400). And a run must outlast
// what else the machine does for a moment: with a second of steps by the prediction (5 to 40; the CPU
// predictions are up to 2x too fast uncalibrated), the tiny runs lasted 0.2 s and the big ones 5 steps,
// and one tiny dp=2 ZeRO-3 LoRA run measured 6.6 ms where its repeats measured 4.2-4.6 (28 of its 40
// steps slowed in two stretches), one big dp=2 ZeRO-3 LoRA run 667 ms against 450-465 (3 of 5 steps).
int steps_for(const std::string& plan) {
  const double step = estimate_time(load_plan(plan)).step_s;
  return std::clamp(static_cast<int>(std::ceil(2.0 / step)), 10, 400);
}

std::string run_command(const std::string& plan, const std::string& db) {
  return cli("run " + plan + " --steps " + std::to_string(steps_for(plan)) + " --threads 1 --quiet --db " + db);
}

struct Errors {
  ErrorSummary before, after;
};

// Fits the store `fit_db` (its runs and its probe) and predicts the runs of `other_db`.
Errors fit_and_predict(const std::string& fit_db, const std::string& other_db, const std::string& label) {
  Store fit_store(fit_db);
  const MeasurementSet fit_read = read_measurements(fit_store, {MeasurementKind::run, MeasurementKind::probe});
  EXPECT_TRUE(fit_read.skipped.empty()) << fit_read.skipped.front();
  const MeasurementSet fit_set = keep_fastest_repeats(fit_read);
  CalibrateOptions co;
  co.name = "cpu-sweep-" + label;
  co.device = "cpu";
  const CalibrationOutcome fitted = calibrate(fit_set, co, fit_db);
  Store other(other_db);
  const MeasurementSet held_read = read_measurements(other, {MeasurementKind::run});
  EXPECT_TRUE(held_read.skipped.empty()) << held_read.skipped.front();
  const MeasurementSet held = keep_fastest_repeats(held_read);
  const std::vector<CalibratedRow> rows = evaluate_rows(held, "cpu", fitted.profile);
  std::vector<double> before, after;
  std::printf("\n[%s] fitted on %s (%zu rows), predicting %s:\n%-34s %12s %12s %8s %12s %8s\n", label.c_str(),
              fit_db.c_str(), fitted.rows.size(), other_db.c_str(), "run", "measured", "uncalib.", "error", "calibrated",
              "error");
  for (const CalibratedRow& r : rows) {
    if (r.m->what != "step") continue;  // the runs' compute rows: not what the bounds are about
    const double m = r.m->measured_s;
    before.push_back(r.before_s / m - 1);
    after.push_back(r.after_s / m - 1);
    std::printf("%-34s %9.2f ms %9.2f ms %+7.1f%% %9.2f ms %+7.1f%%\n", r.m->label.c_str(), 1e3 * m, 1e3 * r.before_s,
                100 * before.back(), 1e3 * r.after_s, 100 * after.back());
  }
  for (const std::string& s : held.skipped) std::printf("  %s\n", s.c_str());  // the slower repeats
  Errors e{summarize_errors(before), summarize_errors(after)};
  std::printf("[%s] |error| of step time, mean / median / max: uncalibrated %.1f%% / %.1f%% / %.1f%%, calibrated "
              "%.1f%% / %.1f%% / %.1f%%\n",
              label.c_str(), 100 * e.before.mean_abs, 100 * e.before.median_abs, 100 * e.before.max_abs,
              100 * e.after.mean_abs, 100 * e.after.median_abs, 100 * e.after.max_abs);
  std::fflush(stdout);
  return e;
}

// Every category of every rank of every run: measured bytes equal the prediction for the rank's pipeline
// stage with the executor's framework profile, with and without the fitted profile (calibration moves
// times only).
void expect_memory_exact(const std::string& db, const Calibration& profile) {
  Store store(db);
  for (const RunRecord& r : store.runs()) {
    Plan p = plan_from_json(nlohmann::json::parse(r.run.plan_json));
    p.training.framework = Framework::paraplan;
    const std::vector<StageMemory> stages = estimate_memory(p).per_stage;
    p.cluster.calibration = profile;
    const std::vector<StageMemory> calibrated = estimate_memory(p).per_stage;
    ASSERT_EQ(calibrated.size(), stages.size()) << r.run.name;
    for (size_t i = 0; i < stages.size(); ++i)
      EXPECT_EQ(calibrated[i].allocated_bytes(), stages[i].allocated_bytes()) << r.run.name << ": calibration moved the memory";
    const RankGrid grid(p);
    int rows = 0;
    for (const MemoryRecord& m : store.memory(r.id)) {
      const StageMemory& s = stages.at(static_cast<size_t>(grid.index_in_group(Axis::pp, m.rank)));
      const std::map<std::string, double> want = {
          {"weights", s.weights_bytes},     {"gradients", s.gradients_bytes},     {"master", s.master_weights_bytes},
          {"optimizer", s.optimizer_bytes}, {"activations", s.activations_bytes}, {"buffers", s.buffers_bytes},
          {"peak", s.allocated_bytes()}};
      if (!want.count(m.category)) continue;
      ++rows;
      EXPECT_EQ(static_cast<int64_t>(m.measured_bytes), static_cast<int64_t>(want.at(m.category)))
          << r.run.name << " rank " << m.rank << " " << m.category << " (bytes measured, predicted)";
    }
    EXPECT_EQ(rows, 7 * r.run.world_size) << r.run.name;
  }
}

}  // namespace

TEST(CalibrationSweep, HalfTheRunsFittedPredictTheOtherHalf) {
  const fs::path dir = test_dir();
  const std::string db[2] = {(dir / "A.sqlite").string(), (dir / "B.sqlite").string()};
  const std::vector<std::string> half[2] = {plans("a"), plans("b")};
  ASSERT_GE(half[0].size(), 6u);
  ASSERT_GE(half[1].size(), 6u);
  std::printf("load before: %s", uptime().c_str());
  // One multi-worker plan measured first and last, into a store of its own (fitted by neither half):
  // how much the machine moved during the sweep, printed beside the errors.
  const std::string drift_db = (dir / "drift.sqlite").string(), drift_plan = half[1].back();
  const auto drift_run = [&] {
    const Result r = shell(run_command(drift_plan, drift_db));
    EXPECT_EQ(r.code, 0) << r.out;
  };
  drift_run();
  // Every plan twice: a pass in order, then one in reverse, so that a plan's two runs are minutes apart
  // (the first and last plans' excepted) and a moment's other work on the machine slows one of them.
  const size_t n = std::max(half[0].size(), half[1].size());
  for (int pass = 0; pass < 2; ++pass)
    for (size_t j = 0; j < n; ++j)
      for (int h = 0; h < 2; ++h) {
        const size_t i = pass == 0 ? j : n - 1 - j;
        if (i >= half[h].size()) continue;
        const Result r = shell(run_command(half[h][i], db[h]));
        ASSERT_EQ(r.code, 0) << half[h][i] << ":\n" << r.out;
      }
  for (int h = 0; h < 2; ++h) {
    const Result r = shell(cli("probe --quick --db " + db[h]));
    ASSERT_EQ(r.code, 0) << r.out;
  }
  drift_run();
  std::printf("load after: %s", uptime().c_str());
  {
    Store store(drift_db);
    std::vector<Measurement> steps;  // the two runs' step rows (not their compute rows)
    for (const Measurement& m : read_measurements(store, {MeasurementKind::run}).rows)
      if (m.what == "step") steps.push_back(m);
    if (steps.size() == 2)
      std::printf("the same plan (%s) measured %.2f ms before the sweep and %.2f ms after it (%+.1f%%)\n",
                  steps[0].label.c_str(), 1e3 * steps[0].measured_s, 1e3 * steps[1].measured_s,
                  100 * (steps[1].measured_s / steps[0].measured_s - 1));
  }

  const Errors ab = fit_and_predict(db[0], db[1], "A->B");
  const Errors ba = fit_and_predict(db[1], db[0], "B->A");
  for (const Errors* e : {&ab, &ba}) {
    SCOPED_TRACE(e == &ab ? "fitted on A, predicting B" : "fitted on B, predicting A");
    EXPECT_LE(e->after.mean_abs, 0.10);
    EXPECT_LE(e->after.max_abs, 0.25);
    EXPECT_LT(e->after.mean_abs, e->before.mean_abs);
    EXPECT_LT(e->after.max_abs, e->before.max_abs);
  }
  Store a(db[0]);
  const MeasurementSet set = keep_fastest_repeats(read_measurements(a, {MeasurementKind::run, MeasurementKind::probe}));
  CalibrateOptions co;
  co.device = "cpu";
  const Calibration profile = calibrate(set, co).profile;
  for (const std::string& d : db) expect_memory_exact(d, profile);
}

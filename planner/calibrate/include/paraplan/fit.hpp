#pragma once
// Fitting the time model's parameters (the Efficiency fields, efficiency_fields()) to measured times:
// least squares on log(predicted / measured) over the logarithms of the parameters, by Levenberg-
// Marquardt with a numeric Jacobian. Any subset of the fields can be fitted: those the rows do not
// constrain keep the hardware's (datasheet) value and are marked so.
#include <set>
#include <string>
#include <vector>

#include "paraplan/calibration.hpp"
#include "paraplan/measurements.hpp"

namespace paraplan::planner {

struct FittedParam {
  const EfficiencyField* field = nullptr;
  double datasheet = 0;  // the hardware's value (data/hardware)
  double value = 0;      // after the fit; the datasheet value when not fitted
  bool fitted = false;
  // fitted: step times (runs, imported) constrain it; measured: probes alone; datasheet: nothing does,
  // or the rows move it but pin it to no better than a factor e (rows > 0, rel_sigma > 1).
  ParamSource source = ParamSource::datasheet;
  double start = 0;      // where the fit starts it: the datasheet value, or a typical magnitude where that is 0
  int rows = 0;          // rows whose prediction it moves by more than 0.1% when 10x or 0.1x its start
  double rel_sigma = 0;  // one standard deviation of its logarithm (~ relative) from the data (0: no data)
};

// Which rows of a set fit_parameters fits; the others are predicted and reported, not fitted.
struct RowsUsed {
  // Executor runs' optimizer rows: only when optimizer_memory is among FitOptions::fields.
  bool optimizer_rows = false;
  // A CPU probe's GEMM rows: only when the set holds no executor run on a CPU. The probe times each
  // shape back to back on the same operands, which stay in the core's caches, with no autograd around
  // them: 0.85-1.13x the cpu preset's peak in nine of the ten quick probes of five stored sweeps, where
  // the GEMMs of the sweeps' training steps ran at 0.71-0.85x (the efficiency fitted to their runs
  // alone). Fitted together, the probe held the efficiency near 1 and the fit slowed the steps by
  // sharing fewer cores among the workers instead (host_cores 1.5), leaving one-worker plans too fast
  // (the big and mid models 17-18 % in a sweep of 2026-12-07 05:18). Held out, mean |error| over seven
  // sweeps' fourteen fits 8.6 % with the probe's GEMMs, 7.3 % without (docs/calibration.md, "The probe's
  // GEMMs on CPU").
  bool cpu_probe_gemms = true;
  bool operator()(const Measurement& row) const;
};

struct FitResult {
  std::vector<FittedParam> params;  // in efficiency_fields() order
  Calibration calibration;          // the fitted parameters as values (name and provenance left to the caller)
  double rms_log_residual = 0;      // weighted root mean square of log(predicted / measured)
  int iterations = 0;
  bool converged = false;
  std::vector<std::string> dropped;  // rows the model cannot predict (a prediction of 0), not fitted
  RowsUsed used;                     // which rows it fitted
};

struct FitOptions {
  int max_iterations = 200;
  // Each kind of row (step times, compute times, and each kind of probe) weighs the same in total, so
  // that a grid of many GEMM shapes does not outvote a handful of runs; then, refitting from that
  // solution, each kind's weight is divided by its mean square residual there (at least 0.05^2): a kind
  // the model cannot follow (collectives timed on a loaded machine) counts less than one it fits.
  bool balance_kinds = true;
  // Only these fields (efficiency_fields() names); empty: every field the rows constrain, except on a CPU
  // the GPU kernel model's finer ones, and optimizer_memory, whose "optimizer" rows count only when it is
  // named here (fit.cpp fitted_by_default).
  std::set<std::string> fields;
  // Huber's robust estimator instead of plain least squares (Huber 1964, "Robust estimation of a location
  // parameter"; by iteratively reweighted least squares, Holland & Welsch 1977): a row whose log residual
  // is beyond 1.345 robust standard deviations (1.4826 x the residuals' median absolute deviation, at
  // least 1 %) weighs 1.345 s / |r| of its weight, so that it pulls the fit with a bounded force. For a
  // few rows of which some have costs the model lacks (the Megatron-Bridge H100 rows: a MoE run 70 % slower
  // than any GEMM efficiency makes it, docs/validation.md), which least squares would let drag the others.
  bool robust = false;
};

// A profile file's fit.estimator for a fit with FitOptions::robust ("least squares" otherwise): what
// `paraplan validate` reads to refit a source's rows as its profile was fitted.
inline constexpr const char* kHuberEstimator = "huber";

// Fits the fields the rows constrain, starting from the hardware's values (a field whose hardware
// value is 0 starts from a typical magnitude: 1 us for times, 2 cores, 0.5 for fractions), with a weak
// pull towards them; a field the fit pins to no better than a factor e keeps its datasheet value and
// the rest is refitted. All rows must be of the device `gpu`.
FitResult fit_parameters(const std::vector<Measurement>& rows, const GpuSpec& gpu, const FitOptions& options = {});

// Which of `rows` fit_parameters fits under `options` (it decides over the whole set: a CPU probe's GEMMs
// stand aside when any of the rows is an executor run on a CPU).
RowsUsed rows_used(const std::vector<Measurement>& rows, const FitOptions& options);

}  // namespace paraplan::planner

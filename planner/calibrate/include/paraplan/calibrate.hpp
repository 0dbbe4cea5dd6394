#pragma once
// `paraplan calibrate`: the measurements of one device fitted into a calibration profile (fit.hpp),
// with its k-fold cross-validated error, and the profile document that data/calibration holds
// (calibration.hpp's format plus the fit's provenance: rows, residuals, held-out errors).
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "paraplan/fit.hpp"
#include "paraplan/measurements.hpp"

namespace paraplan::planner {

struct CalibrateOptions {
  std::string name = "calibrated";
  std::string device;  // hardware preset id; empty: the one device of the usable rows
  int folds = 5;       // k of the k-fold cross-validation (fewer when there are fewer rows; k = rows: leave-one-out)
  FitOptions fit;      // which fields (empty: all the rows constrain), for the fit and each fold's
  std::string description;  // the profile's; empty: "Time-model parameters of <device> fitted by ..."
  bool rows_in_document = true;  // the per-row predictions in the file (a shipped profile leaves them out)
  // Each fitted parameter stored as a factor on the device's datasheet value, so that the profile carries
  // over to other GPUs (data/calibration/published.json's GEMM efficiency).
  bool as_factors = false;
  // Called before each fit (the whole set, then each fold) with a line saying which: long fits (vTrain's
  // 1,440 rows: ~15 s each) show progress. Empty: silent.
  std::function<void(const std::string&)> progress;
};

// Errors (predicted / measured - 1) of a set of rows.
struct ErrorSummary {
  int rows = 0;
  double mean_abs = 0, median_abs = 0, max_abs = 0;
  double p90_abs = 0;  // the |error| 90 % of the rows stay within (nearest rank)
};
ErrorSummary summarize_errors(const std::vector<double>& errors);
// {rows, mean_abs_error, median_abs_error, p90_abs_error, max_abs_error}: the profile file's and the
// report's summaries.
nlohmann::json summary_json(const ErrorSummary& s);

struct CalibratedRow {
  const Measurement* m = nullptr;
  double before_s = 0;                // with the calibration the plan names (probes: none)
  double after_s = 0;                 // with the fitted profile
  std::optional<double> held_out_s;   // fitted without this row's fold
};

struct CalibrationOutcome {
  std::string device;
  Calibration profile;              // name, provenance and the fitted / measured parameters
  FitResult fit;
  std::vector<CalibratedRow> rows;  // every row of the device, in the set's order (pointing into the set)
  int folds = 0;                    // 0: too few rows to cross-validate
  nlohmann::json document;          // the profile file: calibration_to_json + fit rows, residuals, held-out errors
};

// Fits the rows of one device. Throws PlanError naming `--db`/`--gpu` when there is nothing to fit:
// no usable rows (with the reasons the skipped ones were skipped), rows of several devices and no
// device chosen, or rows that constrain no parameter.
CalibrationOutcome calibrate(const MeasurementSet& set, const CalibrateOptions& options,
                             const std::string& store_path = "");

// The device of a fit or a report: `asked` (--gpu) when the set has rows of it, else the set's only
// device. Throws PlanError naming --db (no usable rows, with why the stored ones were skipped) or --gpu.
std::string choose_device(const MeasurementSet& set, const std::string& asked);

// The calibration a row's plan names (its prediction before calibrating); probes: none.
Calibration calibration_before(const Measurement& m);

}  // namespace paraplan::planner

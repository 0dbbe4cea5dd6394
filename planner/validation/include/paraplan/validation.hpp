#pragma once
// Published training runs (data/validation/published-step-time.csv) and the planner's predictions.
#include <string>
#include <vector>

#include "paraplan/plan.hpp"

namespace paraplan::planner {

struct PublishedRun {
  std::string source;  // e.g. narayanan21-t1, korthikanti22-t5
  std::string model;   // preset id
  Plan plan;           // as the paper ran it (software settings per source, see validation.cpp)
  double published_step_s = 0;            // measured iteration time (0 when only TFLOP/s was published)
  double published_tflops_per_gpu = 0;    // 0 when only the time was published
  double reference_flops_per_step = 0;    // FLOPs the paper's TFLOP/s are computed with
  int line = 0;                           // its line in the table (1-based)
  bool in_no_fit = false;  // a later release's row: no shipped profile was fitted on it (a prediction)
};

struct ValidationRow {
  PublishedRun run;
  double predicted_step_s = 0;
  double published_step_s = 0;  // measured, or derived from the published TFLOP/s
  double error = 0;             // (predicted - published) / published, on the step time
};

struct SourceSummary {
  std::string source;
  int rows = 0;
  double mean_abs_error = 0, max_abs_error = 0;
  double p90_abs_error = 0;  // the |error| that 90 % of the rows stay within (nearest rank)
  double mean_error = 0;     // signed: the bias (negative: predicted too fast)
};

// The signed and absolute mean error of the rows sharing one value of a plan field (hidden size,
// micro-batch, tp, pp, dp): a model that is right on average but wrong for small kernels or wide TP
// shows it here.
struct GroupBias {
  std::string source, group;  // e.g. "vtrain-single", "tp=8"
  int rows = 0;
  double mean_error = 0, mean_abs_error = 0;
};

// The table compiled in from data/validation/published-step-time.csv.
std::vector<PublishedRun> published_runs();
// A table of that format (header line, '#' comments): every cell is checked (whole integers and
// numbers, known presets and names, the model's shape columns equal to the preset's) and each row's plan
// obeys the plan rules; a PlanError names "<origin>:<line>: <column>" otherwise.
std::vector<PublishedRun> published_runs_from_csv(const std::string& text, const std::string& origin);
// vTrain's 1,440 measured single-node Megatron-LM runs (data/validation/vtrain-single-node.csv; the
// settings they share in vtrain.cpp), and that file's format.
std::vector<PublishedRun> vtrain_runs();
std::vector<PublishedRun> vtrain_runs_from_csv(const std::string& text, const std::string& origin);
// Megatron-Bridge 25.11's DGX-H100 and DGX-B200 pre-training rows (data/validation/megatron-bridge-25.11.csv;
// sources mbridge-h100 and mbridge-b200, settings in mbridge.cpp), and that file's format.
std::vector<PublishedRun> mbridge_runs();
// The DGX-H100 rows of a later release, 26.04 (data/validation/megatron-bridge-26.04.csv; source
// mbridge-h100-26.04), in no fit: the mbridge-h100 profile, fitted on 25.11, predicts them.
std::vector<PublishedRun> mbridge_held_out_runs();
std::vector<PublishedRun> mbridge_runs_from_csv(const std::string& text, const std::string& origin);
// Predicts each run with its own calibration, or with `calibration` in place of every run's.
std::vector<ValidationRow> validate_runs(const std::vector<PublishedRun>& runs, const Calibration* calibration = nullptr);
std::vector<SourceSummary> summarize(const std::vector<ValidationRow>& rows);
std::vector<GroupBias> bias_by_shape(const std::vector<ValidationRow>& rows);
// Korthikanti et al. 2022 Table 4 (data/validation/korthikanti22-t4.csv): one layer of the 22B model
// (Table 5's plan) under each recompute / sequence-parallel mode, published and predicted (with the
// "published" profile, or `calibration`). Not in any fit: these are prediction errors.
struct LayerTimeRow {
  std::string mode;  // "baseline", "full recompute", ...
  double published_fwd_s = 0, published_bwd_s = 0;
  double predicted_fwd_s = 0, predicted_bwd_s = 0;  // backward with its recompute
};
std::vector<LayerTimeRow> korthikanti_table4(const Calibration* calibration = nullptr);

// Every source validate knows: the published table's, vTrain's and Megatron-Bridge's rows.
std::vector<PublishedRun> all_validation_runs();

// The model's record on the published runs of MoE models, each predicted with its source's own profile,
// as `paraplan validate` prints them: what a MoE step time should be read with. A row is in no fit when
// its profile was fitted on another GPU's rows or an earlier release's (validate's "in no fit").
struct TrackRecord {
  int rows = 0;
  int too_fast = 0;   // predicted below the measured step time
  int in_no_fit = 0;  // predictions proper (the rest are fit errors)
  double min_error = 0, max_error = 0, mean_abs_error = 0;  // signed (predicted - measured) / measured
  std::vector<std::string> sources;
};
TrackRecord moe_track_record();  // computed once

}  // namespace paraplan::planner

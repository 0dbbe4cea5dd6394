#pragma once
// Prediction error, as opposed to fit error, on the published runs of data/validation: each source's
// rows predicted by a profile fitted without them (leave-one-source-out, `paraplan validate --held-out`).
#include <set>
#include <string>
#include <vector>

#include "paraplan/fit.hpp"
#include "paraplan/validation.hpp"

namespace paraplan::planner {

struct SourceHeldOut {
  std::string source;
  int rows = 0;
  double in_fit_mean_abs_error = 0;    // the profile fitted on every source's rows
  double held_out_mean_abs_error = 0;  // the profile fitted on the other sources' rows only
  double held_out_max_abs_error = 0;
};

// Fits `fields` (efficiency_fields() names) on all rows, then once per source on the rows of the other
// sources, each row predicted with its plan's own calibration overridden by the fitted parameters. All
// rows must be of one device; at least two sources.
std::vector<SourceHeldOut> leave_one_source_out(const std::vector<PublishedRun>& runs,
                                                const std::set<std::string>& fields);

// One row predicted by a fit on all rows (in fit) and by a fit on the other rows of its source (held out).
struct RowHeldOut {
  PublishedRun run;
  double published_step_s = 0;
  double in_fit_step_s = 0, held_out_step_s = 0;
  double in_fit_error = 0, held_out_error = 0;  // predicted / published - 1
};

// Leave-one-out over rows, for a source too small to split (the Megatron-Bridge H100 rows): fits as
// `options` say (its fields; least squares or Huber's) on every row, then once per row on the others, which
// predicts it. All rows must be of one device; at least two rows.
std::vector<RowHeldOut> leave_one_row_out(const std::vector<PublishedRun>& runs, const FitOptions& options);

}  // namespace paraplan::planner

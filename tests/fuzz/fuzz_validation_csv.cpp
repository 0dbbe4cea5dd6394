// The validation table (data/validation/published-step-time.csv format): refused with a PlanError
// naming the line and column, or every row estimated.
#include "fuzz_util.hpp"
#include "paraplan/error.hpp"
#include "paraplan/validation.hpp"

using namespace paraplan::planner;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<PublishedRun> runs;
  try {
    runs = published_runs_from_csv(fuzz::text(data, size), "table.csv");
  } catch (const PlanError&) {
    return 0;
  }
  for (const SourceSummary& s : summarize(validate_runs(runs))) fuzz::require(s.rows > 0);
  return 0;
}

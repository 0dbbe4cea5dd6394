// Plan files: parse, validate, estimate, simulate. Any input is either refused with a PlanError or
// estimated; small steps are also simulated event by event (the simulator may refuse a schedule with a
// PlanError); and what paraplan writes for an accepted plan reads back to the same document.
#include <nlohmann/json.hpp>

#include "fuzz_util.hpp"
#include "paraplan/memory.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/report.hpp"
#include "paraplan/sim/simulate.hpp"
#include "paraplan/timing.hpp"

using namespace paraplan::planner;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto doc = fuzz::json_of(data, size, "plan.json");
  if (!doc || fuzz::names_a_file(*doc)) return 0;
  Plan plan;
  try {
    plan = plan_from_json(*doc, ".");
  } catch (const PlanError&) {
    return 0;
  }
  const MemoryBreakdown m = estimate_memory(plan);
  const StepEstimate t = estimate_time(plan);
  (void)plan_report(plan, m, t).dump();
  // Up to 256 micro-batch x chunk tasks per stage: milliseconds, so the fuzzer keeps its pace.
  if (static_cast<double>(plan.micro_batches()) * plan.parallel.pp * plan.parallel.virtual_stages <= 256) {
    try {
      (void)paraplan::sim::simulate(plan, {.record_memory = true});
    } catch (const PlanError&) {
    }
  }
  const nlohmann::json written = plan_to_json(plan);
  const Plan again = plan_from_json(written, ".");  // throws (a finding) if paraplan cannot read what it wrote
  fuzz::require(plan_to_json(again) == written);
  return 0;
}

// paraplan demo memory-tour: the chapter's memory trade-offs, step by step (teach/tour.hpp: the same
// steps the GUI's Learn tab shows).
#include <fmt/format.h>

#include <iostream>

#include "demo_options.hpp"
#include "paraplan/error.hpp"
#include "paraplan/teach/tour.hpp"

namespace paraplan::cli {

int run_memory_tour(const TourOptions& o) {
  const std::vector<teach::TourStep> steps = teach::tour_steps(o.model);
  // A model the planner does not know fails every step: say so once, as bad input.
  if (const teach::TourResult first = teach::evaluate_tour_step(steps, 0); !first.valid)
    throw planner::PlanError("--model", o.model, "the tour's first plan is invalid: " + first.error);
  if (!o.json) {
    fmt::print("The memory tour of the textbook chapter for {}: bf16 mixed precision, AdamW, sequence 2048, "
               "H100-80GB GPUs. Each step turns one knob; \"change\" is against the step named in its header.\n",
               o.model);
    std::cout << teach::tour_text(steps);
    return 0;
  }
  nlohmann::json out = nlohmann::json::array();
  for (int i = 0; i < static_cast<int>(steps.size()); ++i) {
    const teach::TourResult r = teach::evaluate_tour_step(steps, i);
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& row : r.rows)
      rows.push_back({{"what", row.what}, {"unit", row.bytes ? "bytes" : "s"}, {"now", row.now},
                      {"before", row.has_before ? nlohmann::json(row.before) : nlohmann::json()}});
    out.push_back({{"title", steps[static_cast<size_t>(i)].title}, {"knob", steps[static_cast<size_t>(i)].knob},
                   {"compare_with", steps[static_cast<size_t>(i)].compare_with}, {"valid", r.valid},
                   {"error", r.error}, {"rows", rows}, {"formula", r.formula}, {"worked", r.worked},
                   {"explanation", r.explanation}, {"fits", r.valid && r.memory.fits}});
  }
  std::cout << out.dump(2) << "\n";
  return 0;
}

}  // namespace paraplan::cli

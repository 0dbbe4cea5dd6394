#pragma once
// Synthetic step costs for the simulator tests: every model chunk one unit with the given forward,
// backward (activation gradient) and weight-gradient times and one byte of saved activations.
#include "paraplan/sim/costs.hpp"

namespace paraplan::sim::testing {

inline StepCosts uniform_costs(int chunks, double f, double b, double w, double saved = 1, double working = 0) {
  StepCosts c;
  for (int j = 0; j < chunks; ++j) {
    const UnitCost u{.f_compute_s = f, .b_compute_s = b, .w_compute_s = w, .saved_bytes = saved,
                     .working_bytes = working};
    const ChunkCost ch{.first_unit = j, .units = 1, .dense = 1, .f_compute_s = f, .b_compute_s = b,
                       .w_compute_s = w, .saved_bytes = saved, .working_bytes = working};
    c.units.push_back(u);
    c.chunks.push_back(ch);
  }
  return c;
}

}  // namespace paraplan::sim::testing

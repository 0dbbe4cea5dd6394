#pragma once
// Synthetic step costs for the simulator tests: every model chunk one unit with the given forward,
// backward (activation gradient) and weight-gradient times and one byte of saved activations.
#include "paraplan/sim/costs.hpp"

namespace paraplan::sim::testing {

inline StepCosts uniform_costs(int chunks, double f, double b, double w, double saved = 1, double working = 0) {
  StepCosts c;
  for (int j = 0; j < chunks; ++j) {
    UnitCost u;
    u.f_compute_s = f;
    u.b_compute_s = b;
    u.w_compute_s = w;
    u.saved_bytes = saved;
    u.working_bytes = working;
    ChunkCost ch;
    ch.first_unit = j;
    ch.units = 1;
    ch.dense = 1;
    ch.f_compute_s = f;
    ch.b_compute_s = b;
    ch.w_compute_s = w;
    ch.saved_bytes = saved;
    ch.working_bytes = working;
    c.units.push_back(u);
    c.chunks.push_back(ch);
  }
  return c;
}

}  // namespace paraplan::sim::testing

#pragma once
// Exports of a simulated step: a Chrome trace (the JSON "Trace Event Format" that Perfetto and
// chrome://tracing open: one process per pipeline rank, one thread per stream, memory as counter
// tracks) and memory over time per stage as CSV.
#include <iosfwd>

#include "paraplan/sim/simulate.hpp"

namespace paraplan::sim {

// Times in microseconds (the format's unit). Memory counters need SimOptions::record_memory.
void write_chrome_trace(std::ostream& out, const SimResult& result);

// One row per change: time_s,stage,dynamic_bytes,allocated_bytes,total_bytes (total adds the allocator
// headroom and the CUDA/NCCL overheads, as the planner's total). Needs SimOptions::record_memory.
void write_memory_csv(std::ostream& out, const SimResult& result);

}  // namespace paraplan::sim

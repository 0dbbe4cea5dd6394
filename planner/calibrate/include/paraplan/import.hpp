#pragma once
// `paraplan import FILE.csv`: published measurements (the format of data/validation/published-step-
// time.csv, vTrain's table as in data/validation/vtrain-single-node.csv, or Megatron-Bridge's as in
// data/validation/megatron-bridge-25.11.csv, told apart by their column lines) as runs of the store, so that they go through the same fit as the executor's own.
#include <string>
#include <vector>

#include "paraplan/store.hpp"

namespace paraplan::planner {

// Every row of the table as an imported run: its plan as the paper ran it, the measured step time (or
// the one derived from the published TFLOP/s), the planner's prediction with the plan's calibration,
// and its source "<file name>:<line> (<source column>)". A bad cell anywhere throws PlanError naming
// every one ("<file>:<line>: <column>"), before anything is stored.
std::vector<ImportedRun> imported_runs_from_csv(const std::string& text, const std::string& origin);

}  // namespace paraplan::planner

namespace paraplan::planner {

// A published table of collective timings (nccl-tests figures, as data/validation/nccl-tests-a100-
// allreduce.csv: '#' comments, then a column line of device, collective, ranks, bytes and time_us or
// busbw_gb_per_s, optionally ranks_per_node) as one probe of its device, so that calibrate fits the
// collective parameters to it as to `paraplan probe`'s own (bytes: nccl-tests' size of the whole
// buffer; time: one operation; busbw: nccl-tests' bus bandwidth, GB/s of 1e9 bytes). With ranks_per_node
// below ranks a row's group spans nodes (data/validation/allreduce-b200-4node.csv). Every cell is
// checked; a bad one throws PlanError naming "<file>:<line>: <column>" before anything is stored.
bool is_collective_table(const std::string& text);
struct ImportedProbe {
  ProbeRecord probe;                 // device, host "published: <file>", software: what measured it
  std::vector<ProbeResult> results;  // one per row
};
ImportedProbe imported_probe_from_csv(const std::string& text, const std::string& origin);

}  // namespace paraplan::planner

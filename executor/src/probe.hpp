#pragma once
// paraplan-probe's measurements (`paraplan probe`): what one device does per kernel and what its local
// ranks do per collective, each reported as one line on stdout for the CLI to collect. Internal header:
// includes ATen.
#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

#include "paraplan/exec/communicator.hpp"

namespace paraplan::exec {

struct ProbeLine {
  std::string kind, dtype;
  double m = 0, n = 0, k = 0, bytes = 0;
  int ranks = 1;
  double seconds = 0;  // one operation, the median of `repeats`
  int repeats = 0;
};
using ProbeSink = std::function<void(const ProbeLine& result, const std::string& progress)>;

struct ProbeScale {
  bool quick = false;           // the smallest grid (tests)
  double max_call_s = 0.1;      // a GEMM or copy predicted to take longer is not run (CPU budget)
  double min_time_s = 0.05;     // each measurement repeats until it has run this long ...
  int min_repeats = 3;          // ... and at least this often
};

// The median time of one call of `op` (after a warm-up call), on `device` (synchronized around each).
double median_call_seconds(const std::function<void()>& op, const at::Device& device, const ProbeScale& s,
                           int& repeats);

// GEMM throughput over a grid of shapes (M, N, K from 64 to 16384) in each dtype; copies of 4 KiB to
// 256 MiB (memory-bound bandwidth); a tiny add back to back (the fixed cost per kernel).
void probe_compute(const at::Device& device, const std::vector<at::ScalarType>& dtypes, const ProbeScale& s,
                   const ProbeSink& out);

// all-reduce, all-gather, reduce-scatter and send/recv (each rank to the next) over `comm` by message
// size; rank 0 reports (nccl-tests' sizes: the whole buffer; algbw = size / time, busbw = algbw x the
// bus factor).
void probe_collectives(Communicator& comm, const at::Device& device, const ProbeScale& s, const ProbeSink& out);

}  // namespace paraplan::exec

#pragma once
// Collective communication cost over a two-level topology (NVLink inside a node, the network across
// nodes). Bus-bandwidth factors from nccl-tests doc/PERFORMANCE.md; latency and efficiency per link
// tier from the hardware data.
#include "paraplan/plan.hpp"
#include "paraplan/workload.hpp"

namespace paraplan::planner {

struct Link {
  double bytes_per_s = 0;  // per-GPU, per direction
  double efficiency = 1;   // achieved bus bandwidth / link bandwidth
  double latency_s = 0;    // per collective
  bool inter_node = false;
};

// The link a group uses: intra-node if all its ranks sit in one node under cluster.mesh_order
// (the rank grid's span).
Link group_link(const Plan& plan, Axis axis);

// nccl-tests: all-reduce 2(n-1)/n, all-gather / reduce-scatter / all-to-all (n-1)/n, send/recv 1.
double bus_factor(CommKind kind, int n);
// latency + bytes * factor / (bandwidth * efficiency); `bytes` is nccl-tests' size (the whole buffer).
double collective_time(CommKind kind, double bytes, int n, const Link& link);

}  // namespace paraplan::planner

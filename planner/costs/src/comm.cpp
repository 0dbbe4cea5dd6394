#include "paraplan/comm.hpp"

#include "paraplan/calibration.hpp"
#include "paraplan/rank_grid.hpp"

namespace paraplan::planner {

Link group_link(const Plan& plan, Axis axis) {
  const GpuSpec& g = plan.cluster.gpu;
  const Efficiency e = effective_efficiency(g, plan.cluster.calibration);
  const bool inter = RankGrid(plan).span(axis) >= plan.cluster.gpus_per_node;
  if (inter) return {g.inter_node_bytes_per_s, e.inter_node, e.inter_node_latency_s, true};
  return {g.intra_node_bytes_per_s, e.intra_node, e.intra_node_latency_s, false};
}

double bus_factor(CommKind kind, int n) {
  if (n <= 1) return 0;
  const double frac = static_cast<double>(n - 1) / n;
  switch (kind) {
    case CommKind::all_reduce: return 2 * frac;
    case CommKind::all_gather:
    case CommKind::reduce_scatter:
    case CommKind::all_to_all: return frac;
    case CommKind::send_recv: return 1;
  }
  return 1;
}

double collective_time(CommKind kind, double bytes, int n, const Link& link) {
  if (kind != CommKind::send_recv && n <= 1) return 0;
  if (bytes <= 0) return 0;
  return link.latency_s + bytes * bus_factor(kind, n) / (link.bytes_per_s * link.efficiency);
}

}  // namespace paraplan::planner

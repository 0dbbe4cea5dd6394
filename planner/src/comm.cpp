#include "paraplan/comm.hpp"

#include "paraplan/calibration.hpp"

namespace paraplan::planner {

namespace {

// Stride (rank distance between consecutive members) of a mesh axis: the product of the sizes of
// the axes placed inside it (cluster.mesh_order, innermost first).
long long stride_of(const Plan& plan, MeshAxis axis) {
  long long stride = 1;
  for (MeshAxis a : plan.cluster.mesh_order) {
    if (a == axis) return stride;
    switch (a) {
      case MeshAxis::tp: stride *= plan.parallel.tp; break;
      case MeshAxis::cp: stride *= plan.parallel.cp; break;
      case MeshAxis::dp: stride *= plan.parallel.dp; break;
      case MeshAxis::pp: stride *= plan.parallel.pp; break;
    }
  }
  return stride;
}

// Largest rank offset inside the group of rank 0 along `axis`; the group stays in one node iff it is
// below gpus_per_node (layouts are aligned: node boundaries fall on multiples of gpus_per_node).
long long span_of(const Plan& plan, CommAxis axis) {
  const auto& p = plan.parallel;
  switch (axis) {
    case CommAxis::tp: return stride_of(plan, MeshAxis::tp) * (p.tp - 1);
    case CommAxis::pp: return stride_of(plan, MeshAxis::pp) * (p.pp - 1);
    case CommAxis::cp: return stride_of(plan, MeshAxis::cp) * (p.cp - 1);
    case CommAxis::dp:
      return stride_of(plan, MeshAxis::dp) * (p.dp - 1) + stride_of(plan, MeshAxis::cp) * (p.cp - 1);
    case CommAxis::ep: {
      // ep consecutive ranks of the cp x dp block, the inner of the two first.
      const bool cp_inner = stride_of(plan, MeshAxis::cp) < stride_of(plan, MeshAxis::dp);
      const long long inner_n = cp_inner ? p.cp : p.dp;
      const long long inner_s = stride_of(plan, cp_inner ? MeshAxis::cp : MeshAxis::dp);
      const long long outer_s = stride_of(plan, cp_inner ? MeshAxis::dp : MeshAxis::cp);
      const long long last = p.ep - 1;
      return inner_s * (last % inner_n) + outer_s * (last / inner_n);
    }
  }
  return 0;
}

}  // namespace

int group_size(const Plan& plan, CommAxis axis) {
  const auto& p = plan.parallel;
  switch (axis) {
    case CommAxis::tp: return p.tp;
    case CommAxis::cp: return p.cp;
    case CommAxis::ep: return p.ep;
    case CommAxis::dp: return p.dp * p.cp;
    case CommAxis::pp: return p.pp;
  }
  return 1;
}

Link group_link(const Plan& plan, CommAxis axis) {
  const GpuSpec& g = plan.cluster.gpu;
  const Efficiency e = effective_efficiency(g, plan.cluster.calibration);
  const bool inter = span_of(plan, axis) >= plan.cluster.gpus_per_node;
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

#include "paraplan/comm.hpp"

#include <algorithm>
#include <cmath>

#include "paraplan/calibration.hpp"
#include "paraplan/rank_grid.hpp"

namespace paraplan::planner {

double peer_wait_per_step(const GpuSpec& gpu, const Efficiency& e, int workers) {
  if (!gpu.is_cpu || e.host_cores <= 0 || e.peer_wait_s <= 0 || workers <= e.host_cores) return 0;
  return e.peer_wait_s * (1 - e.host_cores / workers);
}

double cpu_link_share(const GpuSpec& gpu, const Efficiency& e, int workers) {
  // ceil: workers that have a whole core each (2 on a machine whose fitted host_cores is 1.5-1.8) are not
  // time-sliced; what pulls host_cores under the core count slows their compute, not gloo's transfers.
  if (!gpu.is_cpu || e.host_cores <= 0 || workers <= std::ceil(e.host_cores)) return 1;
  return std::max(1.0, e.host_cores) / workers;
}

bool dp_overlaps(const Plan& plan, const Efficiency& e) {
  if (!plan.parallel.dp_overlap) return false;
  if (!plan.cluster.gpu.is_cpu) return true;
  return e.host_cores <= 0 || e.host_cores >= plan.cluster.ranks_per_node() + 1;
}

bool dp_overlaps(const Plan& plan) {
  return dp_overlaps(plan, effective_efficiency(plan.cluster.gpu, plan.cluster.calibration));
}

Link group_link(const Plan& plan, Axis axis) {
  return group_link(plan, axis, effective_efficiency(plan.cluster.gpu, plan.cluster.calibration));
}

Link group_link(const Plan& plan, Axis axis, const Efficiency& e) {
  const GpuSpec& g = plan.cluster.gpu;
  const RankGrid grid(plan);
  const int per_node = plan.cluster.gpus_per_node;
  if (grid.span(axis) < per_node) {
    const int workers = plan.cluster.ranks_per_node();
    const double wait = peer_wait_per_step(g, e, workers);
    return {g.intra_node_bytes_per_s * cpu_link_share(g, e, workers), e.intra_node, e.intra_node_latency_s,
            e.intra_node_hop_s + wait, false};
  }
  // A group that spans nodes crosses through the NICs of all its ranks in a node at once (NCCL's rings
  // and trees use every NIC of the node: one channel per NIC), so its bus bandwidth per crossing is the
  // node's share of the group times one GPU's NIC, up to what NVLink carries inside the node. Ranks of
  // rank 0's group inside node 0 (every group is a translate of it).
  const int in_node = std::max(1, grid.members_below(axis, per_node));
  const double nics = in_node * g.inter_node_bytes_per_s;
  Link link{nics, e.inter_node, e.inter_node_latency_s, e.inter_node_hop_s, true,
            g.inter_node_bytes_per_s, e.inter_node, in_node};
  if (g.intra_node_bytes_per_s > 0 && g.intra_node_bytes_per_s * e.intra_node < nics * e.inter_node) {
    link.bytes_per_s = g.intra_node_bytes_per_s;
    link.efficiency = e.intra_node;
  }
  return link;
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
  double transfer = bytes * bus_factor(kind, n) / (link.bytes_per_s * link.efficiency);
  // Across nodes, an all-to-all sends each rank's (n - m) / n of its buffer to the other nodes (m: its
  // group's ranks in a node) and a send/recv all of it, through the rank's own NIC: NCCL runs both as
  // point-to-point sends, each peer over the NIC nearest the GPU (PXN may relay through another GPU's NIC,
  // which is as busy). The node's m NICs carry its m ranks' off-node bytes; the ring's m x NIC of bus
  // bandwidth does not apply. The all-to-all's on-node share, (m - 1) / n over NVLink, runs meanwhile
  // and takes less time (NVLink is 9x or more a NIC on every preset).
  if (link.inter_node && link.nic_bytes_per_s > 0 && (kind == CommKind::all_to_all || kind == CommKind::send_recv)) {
    const double off_node = kind == CommKind::send_recv ? 1.0 : static_cast<double>(n - std::min(n, link.node_ranks)) / n;
    transfer = bytes * off_node / (link.nic_bytes_per_s * link.nic_efficiency);
  }
  const double steps = kind == CommKind::all_reduce ? 2.0 * (n - 1) : kind == CommKind::send_recv ? 1.0 : n - 1.0;
  double t = link.latency_s + steps * link.hop_latency_s + transfer;
  if (kind == CommKind::all_reduce && link.inter_node)  // double binary tree: 2 log2(n) levels
    t = std::min(t, link.latency_s + 2 * std::ceil(std::log2(static_cast<double>(n))) * link.hop_latency_s + transfer);
  return t;
}

}  // namespace paraplan::planner

#pragma once
// Collective communication cost as NCCL runs it over a two-level topology (NVLink inside a node, the
// network across nodes): ring algorithms with a latency per step (all-reduce 2(n-1) steps, all-gather
// and reduce-scatter n-1; NCCL docs "Collective Operations", nccl-tests doc/PERFORMANCE.md for the bus
// bandwidth factors), the double binary tree for all-reduce across nodes (2 log2 n steps; Sanders et al.
// 2009, NCCL 2.4), whichever is faster; a group spanning nodes crosses them through as many NICs as it
// has ranks in a node (NCCL's rings/channels use every rail: Jeaugey, "Massively scale your deep
// learning training with NCCL 2.4", 2019), bounded by NVLink inside the node. Point-to-point traffic
// across nodes (all-to-all, send/recv) is not a ring: each rank's bytes for other nodes leave through one
// NIC, so the node's NICs carry all of its ranks' off-node bytes at once.
#include "paraplan/plan.hpp"
#include "paraplan/workload.hpp"

namespace paraplan::planner {

struct Link {
  double bytes_per_s = 0;  // per-GPU, per direction
  double efficiency = 1;   // achieved bus bandwidth / link bandwidth
  double latency_s = 0;    // per collective (launch and synchronisation)
  double hop_latency_s = 0;  // per algorithm step (ring hop / tree level)
  bool inter_node = false;
  // Across nodes: one GPU's NIC at the network's efficiency, and the group's ranks inside one node.
  double nic_bytes_per_s = 0;
  double nic_efficiency = 1;
  int node_ranks = 1;
};

// CPU workers sharing host_cores: the expected wait per collective step for a peer that is not on a
// core, peer_wait_s x (1 - cores / workers) when `workers` processes of one machine outnumber the cores;
// 0 on GPUs, with host_cores unknown (0) or with a core per worker.
double peer_wait_per_step(const GpuSpec& gpu, const Efficiency& e, int workers);

// CPU workers move a collective's bytes with their own cores (gloo over TCP: the kernel copies each
// message on the sender's and the receiver's cores), and in a ring every worker sends and receives at
// once: with more workers on a machine than it has whole cores (ceil(host_cores)), each transfer of a
// training step runs at host_cores / workers of its speed, as compute does (op_time.cpp core_share): the
// peers that are computing hold the cores. 1 on GPUs, with host_cores unknown (0) or a core each. Measured
// on a 2-core VM (docs/calibration.md, "Transfers and the cores"): a big dp=4 ZeRO-2 run's reduce-scatter
// and all-gather took 43 and 28 ms a call in training; the probe's 8 MiB rate over 4 ranks (no compute)
// for the same 27.8 MB, times 4 / 2, gives 46 and 35 ms. A big dp=2 ZeRO-1 run's all-gathers took 145 ms
// a step; the probe's 2-rank rate gives 137 ms, and a share of host_cores 1.7 / 2 would make it 161.
double cpu_link_share(const GpuSpec& gpu, const Efficiency& e, int workers);

// Whether the data-parallel communication overlaps compute (gradient buckets during the backward, ZeRO-3
// gathers behind it): as the plan says (parallel.dp_overlap), except for CPU workers with no core to
// spare (host_cores calibrated, < workers of one machine + 1). Their collectives run on gloo's threads,
// which wait for a core that the compute holds, and every ring step needs both peers' threads at once:
// the sweep's 2-worker runs were blocked in their all-reduce for as long as the probe's all-reduce of the
// same bytes takes alone (small dp=2: 4.8 ms for 12.4 MB; big dp=2: 185 ms for 390 MB), none of it hidden.
bool dp_overlaps(const Plan& plan);
bool dp_overlaps(const Plan& plan, const Efficiency& e);  // e: the plan's effective efficiency

// The link a group uses: intra-node if all its ranks sit in one node under cluster.mesh_order
// (the rank grid's span). The second form takes the plan's effective efficiency, resolved once by the caller.
Link group_link(const Plan& plan, Axis axis);
Link group_link(const Plan& plan, Axis axis, const Efficiency& e);

// nccl-tests: all-reduce 2(n-1)/n, all-gather / reduce-scatter / all-to-all (n-1)/n, send/recv 1.
double bus_factor(CommKind kind, int n);
// latency + steps x hop latency + bytes x factor / (bandwidth x efficiency); `bytes` is nccl-tests'
// size (the whole buffer); across nodes an all-reduce takes the faster of ring and tree, and an
// all-to-all or send/recv moves its off-node bytes through one NIC per rank.
double collective_time(CommKind kind, double bytes, int n, const Link& link);

}  // namespace paraplan::planner

#pragma once
// GpuSpec and ClusterSpec: what a device can hold and do, and how devices are connected.
#include <optional>
#include <string>

#include "paraplan/training.hpp"

namespace paraplan::planner {

struct GpuSpec {
  std::string id;    // preset id, e.g. "h100-sxm-80gb"
  std::string name;  // human name
  bool custom = false;             // given inline in the plan rather than as a preset id
  bool is_cpu = false;             // a CPU worker (the executor's gloo path), not a GPU
  double memory_bytes = 0;         // device memory usable by the framework
  double peak_fp32_flops = 0;      // dense FLOP/s per dtype (0: not supported)
  double peak_tf32_flops = 0;
  double peak_bf16_flops = 0;
  double peak_fp16_flops = 0;
  double peak_fp8_flops = 0;
  double hbm_bytes_per_s = 0;      // device memory bandwidth
  double intra_node_bytes_per_s = 0;  // per-GPU unidirectional bandwidth inside a node (NVLink)
  double inter_node_bytes_per_s = 0;  // per-GPU unidirectional network bandwidth across nodes
  double host_link_bytes_per_s = 0;   // per-GPU host <-> device bandwidth (PCIe), for offload
  double peak_flops(Precision p) const;
};

struct ClusterSpec {
  GpuSpec gpu;
  int gpus = 1;
  int gpus_per_node = 8;
  // Per-process overheads; unset: the framework profile's documented default (framework.cpp).
  std::optional<double> cuda_context_bytes;
  std::optional<double> nccl_bytes_per_communicator;
  std::optional<double> allocator_headroom;
  int nodes() const { return (gpus + gpus_per_node - 1) / gpus_per_node; }
};

}  // namespace paraplan::planner

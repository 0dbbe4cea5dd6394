#pragma once

#include <algorithm>
// GpuSpec and ClusterSpec: what a device can hold and do, and how devices are connected.
#include <optional>
#include <string>
#include <vector>

#include "paraplan/parallel.hpp"
#include "paraplan/training.hpp"

namespace paraplan::planner {

// Achieved fractions of the peaks: few, physical, and what calibration fits (data/hardware/*.json,
// each value with its source). Absent from a hardware file: 1 (the peaks as stated) and no latency.
struct Efficiency {
  double gemm = 1;                  // large GEMMs: fraction of peak FLOP/s (maximum achievable matmul FLOPS)
  double attention = 1;             // fused (flash) attention kernels, forward and backward
  double memory = 1;                // memory-bound kernels: fraction of HBM bandwidth
  // The optimizer step's update as a multiple of the memory-bound kernels' bandwidth (hbm x memory). 1 on
  // GPUs (fused Adam is one more streaming kernel). On CPU workers the executor's AdamW is one in-place,
  // vectorised pass per unit (executor/src/adamw.cpp) while the model's other memory-bound ops are ATen
  // kernels writing fresh outputs: fitted from the runs' optimizer times (`--fit ...,optimizer_memory`,
  // not by default) the update runs at ~3x their bandwidth (docs/calibration.md).
  double optimizer_memory = 1;
  double kernel_overhead_s = 0;     // fixed cost per kernel (launch, ramp-up, tail)
  double gemm_k_fill = 0;           // a GEMM tile's fixed work (prologue, epilogue) as extra elements of k
  double intra_node = 1;            // collectives inside a node: bus bandwidth / link bandwidth
  double intra_node_latency_s = 0;  // per collective
  double inter_node = 1;            // collectives across nodes
  double inter_node_latency_s = 0;
  double intra_node_hop_s = 0;      // per step of a collective's algorithm inside a node (ring hop)
  double inter_node_hop_s = 0;      // per step across nodes (ring hop, tree level)
  // The framework's host-side cost per kernel the time model counts (dispatch, autograd bookkeeping, the
  // small extra kernels one op of the model launches). A CPU worker's one thread does it besides the
  // kernel's work, so it adds; a GPU's host issues ahead of the device, so a kernel costs the larger of
  // the two (op_time.cpp). 0: none.
  double host_overhead_s = 0;
  double microbatch_overhead_s = 0;  // host time per micro-batch and stage outside the kernels (schedule, p2p sync)
  double step_overhead_s = 0;        // host time per optimizer step outside the kernels (loop, loss scaler, logging)
  // CPU workers: cores that the workers on one machine share. With more workers than cores each runs at
  // cores / workers of its speed (compute, memory traffic and per-kernel costs). 0: a core per worker.
  double host_cores = 0;
  // CPU workers outnumbering those cores: each step of a collective waits for a peer that is off its
  // core, with probability 1 - cores / workers, for about a scheduler slice (Linux CFS: a base slice of
  // 0.75 ms x (1 + log2 CPUs), kernel/sched/fair.c). The wait per such step; 0: not modelled.
  double peer_wait_s = 0;
  bool operator==(const Efficiency&) const = default;
};

// Where a cost parameter's value came from: the hardware data (a datasheet or microbenchmark, with its
// source in data/hardware), a probe of this machine (`paraplan probe`), or a fit to measured steps
// (`paraplan calibrate`).
enum class ParamSource { datasheet, measured, fitted };
const char* to_string(ParamSource s);

// One parameter of a calibration profile: an Efficiency field (by name, efficiency_fields()) set to a
// value, or scaled by a factor of the hardware's own value.
struct CalibratedParam {
  std::string name;   // an Efficiency field, e.g. "gemm", "kernel_overhead_s"
  double value = 1;   // the value itself, or (is_factor) the multiplier of the hardware's value
  bool is_factor = false;
  ParamSource source = ParamSource::fitted;
  std::string note;   // how it was obtained (fit residual, probe shape, ...)
  bool operator==(const CalibratedParam&) const = default;
};

// A calibration profile: values of the time model's parameters that replace the hardware data's,
// with their provenance (calibration.hpp; built-in ones in data/calibration/*.json). Parameters it
// does not name keep the hardware's value (source: datasheet).
struct Calibration {
  std::string name = "none";
  std::string origin;      // how the plan names it: a built-in name, or the path of a profile file
  std::string provenance;  // what it was fitted or measured on
  std::string device;      // the hardware preset whose rows it was fitted on ("": not said)
  std::vector<CalibratedParam> params;
  bool operator==(const Calibration&) const = default;
};

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
  int sm_count = 0;                // streaming multiprocessors (GEMM tiles run in waves of them); 0: no tile model
  double intra_node_bytes_per_s = 0;  // per-GPU unidirectional bandwidth inside a node (NVLink)
  double inter_node_bytes_per_s = 0;  // per-GPU unidirectional network bandwidth across nodes
  double host_link_bytes_per_s = 0;   // per-GPU host <-> device bandwidth (PCIe), for offload
  double host_memory_bytes_per_s = 0; // host DRAM bandwidth per GPU (CPU optimizer under offload)
  // A rack-scale NVLink domain (GB200 NVL72: 18 compute trays of 4 GPUs); 0: the domain is one server.
  int nvlink_tray_gpus = 0;
  int nvlink_domain_trays = 0;
  Efficiency efficiency;
  double peak_flops(Precision p) const;
  bool operator==(const GpuSpec&) const = default;
};

struct ClusterSpec {
  GpuSpec gpu;
  int gpus = 1;
  int gpus_per_node = 8;
  // Rank placement, innermost (consecutive ranks) first: a group whose ranks span nodes pays the
  // network. Expert-parallel groups are carved from the cp x dp ranks (Megatron, torchtitan).
  std::vector<Axis> mesh_order{Axis::tp, Axis::cp, Axis::dp, Axis::pp};  // the four mesh axes (rank_grid.hpp)
  double price_per_gpu_hour = 0;  // for cost estimates; 0: unknown
  // Realization factors for the time model; default "published" on GPUs, "none" on CPU.
  Calibration calibration;
  // Per-process overheads; unset: the framework profile's documented default (framework.cpp).
  std::optional<double> cuda_context_bytes;
  std::optional<double> nccl_bytes_per_communicator;
  std::optional<double> allocator_headroom;
  int nodes() const { return (gpus + gpus_per_node - 1) / gpus_per_node; }
  int ranks_per_node() const { return std::min(gpus, gpus_per_node); }  // the workers sharing one machine
  bool operator==(const ClusterSpec&) const = default;
};

// cluster.gpus_per_node when a plan does not give it: the GPUs of one NVLink domain the job holds. CPU
// workers: all on one machine. A server (HGX/DGX): 8. A rack-scale domain: every GPU up to one domain's
// trays, else whole trays times the largest divisor of the tray count not above a domain's trays — the
// Slurm --segment that Megatron-Bridge's performance scripts ask for on GB200 (scripts/performance/utils/
// executors.py @ 7af9601c9), so that each domain holds as many of the job's GPUs.
int default_gpus_per_node(const GpuSpec& gpu, int gpus);

}  // namespace paraplan::planner

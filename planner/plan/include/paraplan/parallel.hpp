#pragma once
// ParallelPlan: how the work is split (degrees, ZeRO stage, pipeline schedule), and the axes of the
// rank grid its degrees span (rank_grid.hpp).
#include <cstdint>
#include <vector>

namespace paraplan::planner {

// The axes of the rank grid and the groups ranks communicate in — one enum for the plan's mesh order,
// the workload's collectives, the communication model and the executor's process groups.
//   tp, cp, dp, pp: the mesh axes (cluster.mesh_order places them);
//   ep: expert-parallel groups, folded from the cp x dp ranks (Megatron-Core, torchtitan);
//   dp_cp: the gradient group — data x context parallel ranks, which hold the same parameters and reduce
//          gradients (and shard ZeRO states) together (Megatron-Core's data-parallel group with CP).
enum class Axis : uint8_t { tp, cp, ep, dp, pp, dp_cp };
inline constexpr int kAxisCount = 6;
inline constexpr Axis kMeshAxes[] = {Axis::tp, Axis::cp, Axis::dp, Axis::pp};
const char* to_string(Axis a);

enum class PipelineSchedule { gpipe, one_f_one_b, interleaved, zb_h1, zbv };

struct ParallelPlan {
  int dp = 1;
  int tp = 1;
  int pp = 1;
  int cp = 1;
  int ep = 1;    // expert parallel; experts are spread over ep ranks taken from dp*cp (torchtitan, Megatron)
  int zero = 0;  // 0: plain DP; 1: optimizer states; 2: + gradients; 3: + parameters (FSDP full shard)
  bool sequence_parallel = false;
  PipelineSchedule pp_schedule = PipelineSchedule::one_f_one_b;
  int virtual_stages = 1;       // model chunks per pipeline rank (interleaved: v; zbv: 2)
  std::vector<int> layer_split;  // optional explicit layers per chunk (pp*virtual_stages entries)
  bool tp_comm_overlap = false;  // TP collectives overlapped with GEMMs (Transformer Engine userbuffers)
  // MoE all-to-all of one micro-batch under the compute of the next (Megatron-Core
  // --overlap-moe-expert-parallel-comm: the forward and backward of adjacent micro-batches merged).
  bool ep_comm_overlap = false;
  bool dp_overlap = true;        // DP gradient reduction overlapped with the backward, bucket by bucket
  // The interleaved schedule's pipeline transfers under compute in its steady state, where the framework
  // does it (Megatron-Core --overlap-p2p-communication, on by default; FrameworkProfile
  // interleaved_p2p_overlap); false: every transfer blocks (--no-overlap-p2p-communication, Megatron-LM
  // before 2023).
  bool pp_comm_overlap = true;

  int gpus() const { return dp * tp * pp * cp; }
  bool operator==(const ParallelPlan&) const = default;
  int chunks() const { return pp * virtual_stages; }
};

const char* to_string(PipelineSchedule s);

}  // namespace paraplan::planner

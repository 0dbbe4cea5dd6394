#pragma once
// ParallelPlan: how the work is split (degrees, ZeRO stage, pipeline schedule).
#include <vector>

namespace paraplan::planner {

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
  bool dp_overlap = true;        // DP gradient reduction overlapped with the backward, bucket by bucket

  int gpus() const { return dp * tp * pp * cp; }
  int chunks() const { return pp * virtual_stages; }
};

const char* to_string(PipelineSchedule s);

}  // namespace paraplan::planner

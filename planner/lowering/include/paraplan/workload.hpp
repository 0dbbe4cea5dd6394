#pragma once
// Workload: the model lowered to blocks of ops for one micro-batch on one rank, with FLOPs, HBM
// traffic, saved-activation bytes and collectives. The memory model, the time model and the
// simulator all read this one IR.
#include <cstdint>

#include "paraplan/framework.hpp"
#include "paraplan/inline_vec.hpp"
#include "paraplan/params.hpp"
#include "paraplan/plan.hpp"

namespace paraplan::planner {

enum class OpKind : uint8_t { gemm, attention, elementwise, norm, embedding, loss, router };

struct Op {
  const char* name = "";
  OpKind kind = OpKind::elementwise;
  double m = 0, n = 0, k = 0;  // GEMM [m x k] . [k x n] on this rank (gemm ops; attention core: QK^T per head)
  double batch = 1;            // independent GEMMs of that shape (gemm ops: one kernel each, a grouped GEMM's
                               // local experts; attention core: micro-batch x local heads, batched; MoE
                               // permutation ops: their passes)
  double flops = 0;            // forward FLOPs on this rank, as executed (causal kernels skip the masked half)
  double model_flops = 0;      // forward FLOPs counted by the model-FLOPs convention (attention non-causal)
  bool weight_grad = false;    // backward also computes a weight gradient (trainable weights)
  double lora_flops = 0;       // forward FLOPs of this op's LoRA adapter (trainable even when the base is frozen)
  double io_bytes = 0;         // HBM bytes read + written in forward (memory-bound ops)
  double bwd_io_bytes = -1;    // in backward, where not the default 2 x io_bytes (read grad and input, write grad)
  double saved_bytes = 0;      // activation bytes kept from forward to backward (nothing recomputed)
  bool core_attention = false; // dropped and recomputed under selective recompute (Korthikanti 2022 §4.2)
  double bwd_working_bytes = 0;  // gradient buffers alive while this op's backward runs
};

enum class CommKind : uint8_t { all_reduce, all_gather, reduce_scatter, all_to_all, send_recv };
enum class Pass : uint8_t { forward, backward };

struct Comm {
  const char* name = "";
  CommKind kind = CommKind::all_reduce;
  Axis axis = Axis::tp;  // the group it runs in (parallel.hpp)
  Pass pass = Pass::forward;
  double bytes = 0;  // nccl-tests "size": the full buffer for all-reduce, the gathered/total buffer for AG/RS
  // A TP collective of a Transformer Engine linear layer, which tp_comm_overlap (userbuffers) can hide
  // behind its GEMM; false for the MoE dispatcher's own tp gathers, which TE does not overlap.
  bool gemm_overlappable = true;
};

enum class BlockKind : uint8_t { embedding, dense_layer, moe_layer, head };

struct Block {
  BlockKind kind = BlockKind::dense_layer;
  // Capacities (push_back throws past them): the largest block, a DeepSeek-V3 MoE layer under TP + SP,
  // CP and EP, has 21 ops and 16 comms (every preset x tp, cp, ep, SP, LoRA, flash enumerated).
  InlineVec<Op, 24> ops;
  InlineVec<Comm, 24> comms;
  // Sums over ops, per micro-batch on one rank:
  double saved_bytes[3] = {0, 0, 0};   // by Recompute: none, selective, full
  double recompute_working_bytes[3] = {0, 0, 0};  // activations re-created during backward, by Recompute
  double bwd_working_bytes = 0;        // largest gradient working set of one op
  double fwd_flops = 0, model_flops = 0;
  // Weights of the block's GEMMs on this rank, in parameters (not the router's: a plain torch linear in
  // Megatron-Core); Transformer Engine caches their FP8 copies (framework.hpp te_fp8).
  double gemm_weight_params = 0;

  void add(const Op& op) { ops.push_back(op); }
  void finish(double checkpoint_bytes);  // fills the sums; checkpoint: what full recompute keeps
};

// The shape that fixes a workload; plans that share it (different dp, pp, zero, schedule) share the workload.
struct WorkloadShape {
  int tp = 1, cp = 1, ep = 1;
  bool sequence_parallel = false;
  int micro_batch = 1;
};

struct Workload {
  WorkloadShape shape;
  ModelParams params;   // whole-model parameter breakdown (unsharded)
  Block embedding, dense_layer, moe_layer, head;
  double tokens = 0;    // tokens per micro-batch on one rank (b * s / cp)
  double act_bytes = 2; // bytes per activation element
  int64_t padded_vocab = 0;
};

Workload build_workload(const Plan& plan, const FrameworkProfile& fw, const WorkloadShape& shape);
inline WorkloadShape shape_of(const Plan& p) {
  return {p.parallel.tp, p.parallel.cp, p.parallel.ep, p.parallel.sequence_parallel, p.training.micro_batch};
}

}  // namespace paraplan::planner

// Training FLOPs from the workload's op list, independent of how the work is split.
// Forward GEMM 2mnk; backward = activation gradient (2mnk) + weight gradient (2mnk, trainable weights
// only: a frozen LoRA base skips it, formulas.md §1.11); attention core backward 2x its forward.
// For a GPT layer this is Megatron's 72 B s L h^2 (1 + s/(6h) + V/(12 L h)) (Korthikanti 2022 App. A).
#include "paraplan/flops.hpp"

#include "paraplan/framework.hpp"
#include "paraplan/workload.hpp"

namespace paraplan::planner {

namespace {

struct BlockFlops {
  double model = 0, recompute[3] = {0, 0, 0};
};

BlockFlops block_flops(const Block& b, AttentionFlops conv) {
  BlockFlops f;
  double fwd = 0, attn_fwd = 0;
  for (const Op& op : b.ops) {
    double mf = op.model_flops;
    if (op.kind == OpKind::attention && conv == AttentionFlops::causal) mf /= 2;
    const double lora = op.lora_flops;
    fwd += mf + lora;
    if (op.kind == OpKind::attention) attn_fwd += mf;
    const double bwd = op.kind == OpKind::attention ? 2 * mf : mf * (op.weight_grad ? 2 : 1);
    f.model += mf + bwd + 3 * lora;
  }
  f.recompute[static_cast<int>(Recompute::selective)] = attn_fwd;  // the attention core is re-run
  f.recompute[static_cast<int>(Recompute::full)] = fwd;           // the whole layer is re-run
  return f;
}

}  // namespace

StepFlops step_flops(const Plan& plan, AttentionFlops conv) {
  // One sequence-batch of micro_batch sequences on an unsplit model.
  FrameworkProfile fw = framework_profile(plan.framework());
  fw.vocab_pad_multiple = 1;  // the model's own vocabulary, not a framework's padding
  WorkloadShape shape;
  shape.micro_batch = plan.training.micro_batch;
  const Workload w = build_workload(plan, fw, shape);
  const BlockFlops emb = block_flops(w.embedding, conv), dense = block_flops(w.dense_layer, conv),
                   moe = block_flops(w.moe_layer, conv), head = block_flops(w.head, conv);
  const int rc = static_cast<int>(plan.training.recompute);
  const double nd = plan.model.dense_layer_count(), nm = plan.model.moe_layer_count();
  const double per_mb_model = emb.model + nd * dense.model + nm * moe.model + head.model;
  const double per_mb_recompute = nd * dense.recompute[rc] + nm * moe.recompute[rc];
  const double micro_batches = static_cast<double>(plan.training.global_batch) / plan.training.micro_batch;
  StepFlops s;
  s.model = per_mb_model * micro_batches;
  s.hardware = (per_mb_model + per_mb_recompute) * micro_batches;
  s.per_token_model = per_mb_model / (static_cast<double>(plan.training.micro_batch) * plan.training.seq_len);
  return s;
}

}  // namespace paraplan::planner

// The shape context (context.hpp): the lowered workload, its op times and the parameters per rank, for
// every plan of one shape.
#include "paraplan/context.hpp"

#include "paraplan/calibration.hpp"

namespace paraplan::planner {

ShapeContext::ShapeContext(const Plan& plan, const FrameworkProfile& profile)
    : fw(profile), w(build_workload(plan, profile, shape_of(plan))) {}

ShapeContext make_context(const Plan& plan, ContextParts parts) {
  FrameworkProfile fw = framework_profile(plan.framework());
  const auto& cl = plan.cluster;
  if (cl.cuda_context_bytes) fw.overheads.cuda_context_bytes = *cl.cuda_context_bytes;
  if (cl.nccl_bytes_per_communicator) fw.overheads.nccl_bytes_per_communicator = *cl.nccl_bytes_per_communicator;
  if (cl.allocator_headroom) fw.overheads.allocator_headroom = *cl.allocator_headroom;
  ShapeContext c(plan, fw);
  if (parts == ContextParts::memory_and_time) retime_context(c, plan);
  const auto& lora = plan.training.lora;
  const int tp = plan.parallel.tp, ep = plan.parallel.ep;
  c.dense = rank_params(c.w.params.dense_layer, lora, tp, ep);
  c.moe = rank_params(c.w.params.moe_layer, lora, tp, ep);
  c.embedding = rank_params(c.w.params.embedding, lora, tp, ep);
  c.head = rank_params(c.w.params.head, lora, tp, ep);
  c.tied_head = rank_params(c.w.params.tied_head_copy, lora, tp, ep);
  return c;
}

void retime_context(ShapeContext& c, const Plan& plan) {
  c.eff = effective_efficiency(plan.cluster.gpu, plan.cluster.calibration);
  c.times = time_workload(plan, c.w, c.fw, c.eff);
}

}  // namespace paraplan::planner

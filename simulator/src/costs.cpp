// Unit and chunk costs from the planner's models. The split of each block's time into compute,
// exposed and hidden collectives is the planner's (timing.cpp: TP exposed unless tp_comm_overlap, then
// only what exceeds the GEMMs; CP hidden behind the attention core; EP exposed); recompute re-runs
// the attention core (selective) or the layer's forward with its exposed collectives (full) inside the
// backward, as step.cpp charges it. Collectives: comm.hpp (nccl-tests bus bandwidth, two-level topology).
#include "paraplan/sim/costs.hpp"

#include "paraplan/bytes_per_param.hpp"

#include <algorithm>

#include "paraplan/comm.hpp"
#include "paraplan/memory.hpp"
#include "paraplan/pipeline.hpp"

namespace paraplan::sim {

using namespace planner;

namespace {

struct UnitMaker {
  const Plan& plan;
  const ShapeContext& ctx;
  int rc;
  double wb, gb;
  int n_dense, n_expert;
  Link dp_link;

  double dp_coll(CommKind kind, double dense_bytes, double expert_bytes) const {  // ZeRO-3, per unit
    return collective_time(kind, dense_bytes, n_dense, dp_link) + collective_time(kind, expert_bytes, n_expert, dp_link);
  }

  UnitCost make(BlockKind kind, const Block& blk, const BlockTime& t, const RankParams& rp) const {
    UnitCost u;
    u.kind = kind;
    const bool layer = kind == BlockKind::dense_layer || kind == BlockKind::moe_layer;
    u.f_compute_s = t.fwd;
    u.f_exposed_s = t.exposed_fwd;
    u.f_hidden_s = t.comm_fwd - t.exposed_fwd;
    u.b_compute_s = t.bwd_input;
    u.b_exposed_s = t.exposed_bwd;
    u.b_hidden_s = t.comm_bwd - t.exposed_bwd;
    u.w_compute_s = t.bwd_weight;
    if (layer && rc != 0) {
      const bool full = rc == static_cast<int>(Recompute::full);
      const double rec_comm = full ? t.exposed_fwd : 0;
      u.b_compute_s += t.recompute[rc] - rec_comm;
      u.b_exposed_s += rec_comm;
      if (full) u.b_hidden_s += t.comm_fwd - t.exposed_fwd;
    }
    // Memory: layers by the recompute mode, embedding and head in full (memory.cpp).
    u.saved_bytes = blk.saved_bytes[layer ? rc : 0];
    if (layer) u.working_bytes = blk.bwd_working_bytes + blk.recompute_working_bytes[rc];
    if (kind == BlockKind::head) u.working_bytes = blk.bwd_working_bytes;

    u.trainable_dense = rp.trainable_dense;
    u.trainable_expert = rp.trainable_expert;
    if (layer) {  // QKV, output projection, FC1, FC2 (MLA: its projections), the router, each expert's
      int tensors = 0;
      for (const auto& op : blk.ops)
        if ((op.kind == OpKind::gemm || op.kind == OpKind::router) && op.weight_grad)
          tensors += static_cast<int>(std::max(1.0, op.batch));
      u.weight_tensors = std::max(1, tensors);
    }
    if (plan.parallel.zero == 3) {
      // ZeRO-3 / FSDP: the unit's parameters gathered in 16 bits, its gradients reduce-scattered (step.cpp).
      u.gather_s = dp_coll(CommKind::all_gather, wb * rp.trainable_dense + rp.frozen_bytes_dense,
                           wb * rp.trainable_expert + rp.frozen_bytes_expert);
      u.scatter_s = dp_coll(CommKind::reduce_scatter, gb * rp.trainable_dense, gb * rp.trainable_expert);
      if (plan.training.offload == Offload::optimizer_params)  // ZeRO-Infinity: the shard comes up from the host first
        u.gather_s += wb * (rp.trainable_dense / n_dense + rp.trainable_expert / n_expert) /
                      plan.cluster.gpu.host_link_bytes_per_s;
      u.gathered_bytes = rp.total() * wb;
      u.unsharded_grad_bytes = rp.trainable() * gb;
    }
    return u;
  }
};

void add_to_chunk(ChunkCost& c, const UnitCost& u) {
  c.f_compute_s += u.f_compute_s;
  c.f_exposed_s += u.f_exposed_s;
  c.f_hidden_s += u.f_hidden_s;
  c.b_compute_s += u.b_compute_s;
  c.b_exposed_s += u.b_exposed_s;
  c.b_hidden_s += u.b_hidden_s;
  c.w_compute_s += u.w_compute_s;
  c.saved_bytes += u.saved_bytes;
  c.working_bytes = std::max(c.working_bytes, u.working_bytes);
}

}  // namespace

double DataParallelCosts::time(CommKind kind, double bytes_per_param, double dense, double expert) const {
  return collective_time(kind, bytes_per_param * dense, n_dense, link) +
         collective_time(kind, bytes_per_param * expert, n_expert, link);
}

StepCosts build_costs(const Plan& plan, const ShapeContext& ctx) {
  const auto& par = plan.parallel;
  const auto& tr = plan.training;
  const int n_dense = par.dp * par.cp;
  const UnitMaker mk{plan, ctx, static_cast<int>(tr.recompute), weight_bytes_per_param(tr.precision),
                     grad_bytes_per_param(tr.precision, tr.grad_dtype), n_dense, n_dense / par.ep,
                     group_link(plan, Axis::dp_cp)};
  StepCosts out;
  out.zero3 = par.zero == 3 && n_dense > 1;
  DataParallelCosts& dp = out.dp;
  dp.reduce_grads = par.zero <= 2 && n_dense > 1;
  dp.gather_params = dp.reduce_grads && par.zero >= 1;
  dp.reduce_kind = par.zero == 0 ? CommKind::all_reduce : CommKind::reduce_scatter;
  dp.grad_bytes_per_param = mk.gb;
  dp.weight_bytes_per_param = mk.wb;
  dp.n_dense = mk.n_dense;
  dp.n_expert = mk.n_expert;
  dp.link = mk.dp_link;
  dp.bucket_params = dp_bucket_params(plan, ctx.fw);
  if (par.pp > 1) {
    // One boundary activation, 1/tp of it per rank (Megatron's scatter-gather, Narayanan 2021 §4.1), as step.cpp.
    const double bytes = ctx.w.act_bytes * ctx.w.tokens * plan.model.hidden / par.tp;
    out.p2p_s = collective_time(CommKind::send_recv, bytes, 2, group_link(plan, Axis::pp));
  }

  RankParams head_params = ctx.head;
  if (par.pp > 1 && plan.model.tied_embeddings) head_params.add(ctx.tied_head, 1);  // Megatron's tied copy
  const UnitCost emb = mk.make(BlockKind::embedding, ctx.w.embedding, ctx.times.embedding, ctx.embedding);
  const UnitCost dense = mk.make(BlockKind::dense_layer, ctx.w.dense_layer, ctx.times.dense_layer, ctx.dense);
  const UnitCost moe = plan.model.moe ? mk.make(BlockKind::moe_layer, ctx.w.moe_layer, ctx.times.moe_layer, ctx.moe)
                                      : UnitCost{};
  const UnitCost head = mk.make(BlockKind::head, ctx.w.head, ctx.times.head, head_params);

  const std::vector<int> split = chunk_layers(plan);
  const int first_moe = plan.model.moe ? plan.model.moe->dense_layers : plan.model.layers;
  out.units.reserve(static_cast<size_t>(plan.model.layers) + 2);
  out.chunks.resize(split.size());
  int layer = 0;
  for (size_t j = 0; j < split.size(); ++j) {
    ChunkCost& c = out.chunks[j];
    c.first_unit = static_cast<int>(out.units.size());
    auto push = [&](const UnitCost& u) {
      out.units.push_back(u);
      add_to_chunk(c, u);
    };
    if (j == 0) {
      c.embedding = true;
      push(emb);
    }
    for (int i = 0; i < split[j]; ++i, ++layer) {
      const bool is_moe = layer >= first_moe;
      (is_moe ? c.moe : c.dense) += 1;
      push(is_moe ? moe : dense);
    }
    if (j + 1 == split.size()) {
      c.head = true;
      push(head);
    }
    c.units = static_cast<int>(out.units.size()) - c.first_unit;
  }
  return out;
}

}  // namespace paraplan::sim

#include "paraplan/rank_params.hpp"

#include "paraplan/bytes_per_param.hpp"

namespace paraplan::planner {

void RankParams::add(const RankParams& o, double count) {
  trainable_dense += count * o.trainable_dense;
  trainable_expert += count * o.trainable_expert;
  frozen_dense += count * o.frozen_dense;
  frozen_expert += count * o.frozen_expert;
  frozen_bytes_dense += count * o.frozen_bytes_dense;
  frozen_bytes_expert += count * o.frozen_bytes_expert;
}

RankParams rank_params(const BlockParams& bp, const std::optional<LoraSpec>& lora, int tp, int ep) {
  const double t = tp, e = ep;
  auto dense = [&](const ShardedParams& s) { return s.tp_sharded / t + static_cast<double>(s.replicated); };
  auto expert = [&](const ShardedParams& s) { return static_cast<double>(s.expert) / (e * t); };
  RankParams rp;
  if (!lora) {
    const ShardedParams base = bp.base();
    rp.trainable_dense = dense(base);
    rp.trainable_expert = expert(base);
    return rp;
  }
  // LoRA: the base is frozen in lora.base's dtype; QLoRA's NF4 applies to linear weights only.
  const double lin_b = frozen_linear_bytes_per_param(lora->base);
  const double other_b = frozen_other_bytes_per_param(lora->base);
  rp.trainable_dense = dense(bp.lora);
  rp.frozen_dense = dense(bp.linear) + dense(bp.other);
  rp.frozen_expert = expert(bp.linear) + expert(bp.other);
  rp.frozen_bytes_dense = dense(bp.linear) * lin_b + dense(bp.other) * other_b;
  rp.frozen_bytes_expert = expert(bp.linear) * lin_b + expert(bp.other) * other_b;
  return rp;
}

}  // namespace paraplan::planner

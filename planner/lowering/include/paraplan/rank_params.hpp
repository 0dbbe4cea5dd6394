#pragma once
// What one rank holds of each block: after tensor and expert sharding, before ZeRO, trainable and
// frozen (with the frozen base's bytes in its LoRA dtype).
#include <optional>

#include "paraplan/params.hpp"

namespace paraplan::planner {

// Parameters of one block held by one rank (after TP/EP sharding, before ZeRO), split into the
// parts ZeRO shards over different groups (dense over dp*cp, experts over dp*cp/ep) and into
// trainable and frozen (LoRA base) parameters.
struct RankParams {
  double trainable_dense = 0, trainable_expert = 0;
  double frozen_dense = 0, frozen_expert = 0;              // frozen base weights, in parameters
  double frozen_bytes_dense = 0, frozen_bytes_expert = 0;  // the same, in bytes (lora.base dtype; NF4)
  double total() const { return trainable_dense + trainable_expert + frozen_dense + frozen_expert; }
  double trainable() const { return trainable_dense + trainable_expert; }
  void add(const RankParams& o, double count);
};
RankParams rank_params(const BlockParams& bp, const std::optional<LoraSpec>& lora, int tp, int ep);

}  // namespace paraplan::planner

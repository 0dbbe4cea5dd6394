#pragma once
// Plan: the one document that ties paraplan together (model, training, parallel, cluster).
#include "paraplan/hardware.hpp"
#include "paraplan/model.hpp"
#include "paraplan/parallel.hpp"
#include "paraplan/training.hpp"

namespace paraplan::planner {

struct Plan {
  ModelSpec model;
  TrainingSpec training;
  ParallelPlan parallel;
  ClusterSpec cluster;

  Framework framework() const {
    if (training.framework) return *training.framework;
    return cluster.gpu.is_cpu ? Framework::paraplan : Framework::megatron;
  }
  // Micro-batches per optimizer step on one pipeline (gradient-accumulation steps).
  long long micro_batches() const {
    return training.global_batch / (static_cast<long long>(parallel.dp) * training.micro_batch);
  }
  bool operator==(const Plan&) const = default;
};

}  // namespace paraplan::planner

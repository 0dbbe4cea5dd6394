#pragma once
// One stage of a pipeline (or the whole model when pp = 1) running one optimizer step's forward (F),
// backward (B) and weight-gradient (W) passes in exactly the order the planner's schedule generator
// gives this stage (paraplan/pipeline_schedule.hpp; the simulator runs the same lists). Activations go
// to the next model chunk's stage and their gradients back, over the pipeline group; sends are
// asynchronous and each sent tensor is dropped at the op planner::send_release names, so memory is the
// same every step and the planner walks the same timeline. The stage logs the ops it ran.
#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model.hpp"
#include "paraplan/exec/communicator.hpp"
#include "paraplan/plan.hpp"
#include "zero_engine.hpp"

namespace paraplan::exec {

// Micro-batch `index` of the step: ids when the stage runs the first model chunk, targets when it runs
// the last.
using BatchSource = std::function<MicroBatch(int64_t index, bool ids, bool targets)>;

class PipelineRunner {
 public:
  PipelineRunner(const planner::Plan& plan, Communicator& pp, Model& model, ZeroEngine& engine, int stage);
  ~PipelineRunner();

  // One step's passes. Returns the sum of the losses of the micro-batches whose last chunk runs here
  // (0 on other stages). `scale` multiplies each micro-batch's summed token loss.
  double run(const BatchSource& batch, double scale);
  // The ops of the last step as they ran, "F0 F1 B0 ..." (planner::to_string of the ops).
  const std::string& op_log() const;
  // The op (index in this stage's list) during which the last step's memory peak occurred, and the
  // bytes allocated when each op ended (counting allocator; empty when it is not installed).
  int peak_op() const;
  const std::vector<int64_t>& bytes_after_op() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace paraplan::exec

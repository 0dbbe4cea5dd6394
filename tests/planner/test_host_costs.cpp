// The two time-model parameters issue 13 adds for what a CPU worker measures (hardware.hpp): the host's
// cost per kernel (added on a CPU worker, the slower of host and device on a GPU) and the cores the
// workers of one machine share. At their defaults (0) they change nothing (tests/golden pins that).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "paraplan/calibration.hpp"
#include "paraplan/context.hpp"
#include "paraplan/op_time.hpp"
#include "paraplan/plan_io.hpp"

using namespace paraplan::planner;

namespace {

Plan plan_on(const char* gpu, int gpus, bool flash) {
  return plan_from_json(nlohmann::json{{"model", "tiny-llama"},
                         {"training", {{"seq_len", 32}, {"micro_batch", 2}, {"global_batch", 2 * gpus},
                                       {"precision", std::string(gpu) == "cpu" ? std::string("fp32") : std::string("bf16")},
                                       {"flash_attention", flash}}},
                         {"parallel", {{"dp", gpus}}},
                         {"cluster", {{"gpu", gpu}, {"gpus", gpus}}}});
}

Calibration with(const char* name, double v) {
  Calibration c;
  c.name = "test";
  c.params.push_back({name, v, false, ParamSource::fitted, ""});
  return c;
}

}  // namespace

// The kernels of one tiny-llama layer's forward as framework.cpp's profiles count them, by hand from the
// workload's ops (2 norms, 4 linears: qkv, o, gate|up, down; RoPE; the attention core; SwiGLU; 2
// residual adds; no dropout). paraplan's CPU executor (paraplan_launches): layer glue 2 + norms 2 x 4 +
// linears 4 x 1 + RoPE 4 + SwiGLU 3 + residuals 2 x 1 = 23, plus attention 4 (flash: the fused core) or
// 4 + 1 (unfused: the core and the softmax): 27 or 28.
TEST(HostCosts, OnACpuWorkerTheHostsCostAddsPerKernel) {
  for (bool flash : {true, false}) {
    Plan p = plan_on("cpu", 1, flash);
    const ShapeContext base = make_context(p);
    const double h = 20e-6;
    p.cluster.calibration = with("host_overhead_s", h);
    const ShapeContext host = make_context(p);
    EXPECT_DOUBLE_EQ(base.times.dense_layer.host_fwd, 0) << "flash " << flash;
    // One thread issues and runs each kernel: the host's time adds, whatever the device's.
    EXPECT_NEAR(host.times.dense_layer.host_fwd, (flash ? 27 : 28) * h, 1e-12) << "flash " << flash;
    EXPECT_DOUBLE_EQ(host.times.dense_layer.fwd, base.times.dense_layer.fwd) << "flash " << flash;
  }
}

// Megatron-Core's kernels for the same layer on an H100 (megatron_core_launches, flash): glue 2 + norms
// 2 + linears 4 + RoPE 1 + flash 1 + SwiGLU 1 + residuals 2 = 13.
TEST(HostCosts, OnAGpuTheSlowerOfHostAndDeviceSetsThePace) {
  Plan p = plan_on("h100-sxm-80gb", 1, true);
  // 1 us of host time per kernel is less than the device takes for the layer (13 kernels at the preset's
  // 2 us fixed cost each, plus their work): the host keeps ahead and nothing moves.
  p.cluster.calibration = with("host_overhead_s", 1e-6);
  const BlockTime ahead = make_context(p).times.dense_layer;
  EXPECT_DOUBLE_EQ(ahead.host_fwd, 0);
  // 1 s per kernel outlasts every kernel: the forward is 1 s per kernel launched.
  p.cluster.calibration = with("host_overhead_s", 1.0);
  const BlockTime l = make_context(p).times.dense_layer;
  EXPECT_DOUBLE_EQ(l.fwd, ahead.fwd);  // the device's own time is the same
  EXPECT_NEAR(l.host_fwd + l.fwd + l.exposed_fwd, 13.0, 1e-9);
}

TEST(HostCosts, WorkersBeyondTheCoresShareThem) {
  // 4 workers on a machine of 2 cores: each runs at half speed, so a memory-bound kernel (bytes over the
  // bandwidth plus the fixed cost) takes twice as long. One worker, or 2 machines of 2, keep their cores.
  Plan four = plan_on("cpu", 4, true);
  const double alone = memory_bound_time(four, 1 << 20);
  four.cluster.calibration = with("host_cores", 2);
  EXPECT_DOUBLE_EQ(memory_bound_time(four, 1 << 20), 2 * alone);
  Plan split = four;
  split.cluster.gpus_per_node = 2;
  EXPECT_DOUBLE_EQ(memory_bound_time(split, 1 << 20), alone);
  Plan one = plan_on("cpu", 1, true);
  one.cluster.calibration = with("host_cores", 0.5);  // less than one core: one worker still has one
  EXPECT_DOUBLE_EQ(memory_bound_time(one, 1 << 20), memory_bound_time(plan_on("cpu", 1, true), 1 << 20));
  // A GPU has no cores to share.
  Plan gpu = plan_on("h100-sxm-80gb", 4, true);
  const double g = memory_bound_time(gpu, 1 << 20);
  gpu.cluster.calibration = with("host_cores", 1);
  EXPECT_DOUBLE_EQ(memory_bound_time(gpu, 1 << 20), g);
}

TEST(HostCosts, PipelineStagesInTheBubbleLeaveTheirCoresToTheOthers) {
  // 2 pipeline stages on a machine of 1.6 cores, 4 micro-batches (1F1B): each stage computes in 4 of the
  // 4 + 2 - 1 = 5 slots, so 2 x 4/5 = 1.6 workers compute at once on average: each has a core, and a
  // memory-bound kernel takes what it takes alone. 16 micro-batches: 2 x 16/17 = 32/17 workers on 1.6
  // cores run at 1.6 x 17/32 of their speed. Two data-parallel workers on the same cores always share.
  auto pipeline = [](int global_batch) {
    Plan p = plan_from_json(nlohmann::json{
        {"model", "tiny-llama"},
        {"training", {{"seq_len", 32}, {"micro_batch", 1}, {"global_batch", global_batch}, {"precision", "fp32"}}},
        {"parallel", {{"pp", 2}, {"pp_schedule", "1f1b"}}},
        {"cluster", {{"gpu", "cpu"}, {"gpus", 2}}}});
    return p;
  };
  Plan four = pipeline(4);
  const double alone = memory_bound_time(four, 1 << 20);
  four.cluster.calibration = with("host_cores", 1.6);
  EXPECT_NEAR(memory_bound_time(four, 1 << 20), alone, 1e-12 * alone);
  Plan sixteen = pipeline(16);
  sixteen.cluster.calibration = with("host_cores", 1.6);
  EXPECT_NEAR(memory_bound_time(sixteen, 1 << 20), alone * 32.0 / 17 / 1.6, 1e-9 * alone);
  Plan dp = plan_on("cpu", 2, true);
  const double dp_alone = memory_bound_time(dp, 1 << 20);
  dp.cluster.calibration = with("host_cores", 1.6);
  EXPECT_NEAR(memory_bound_time(dp, 1 << 20), dp_alone * 2 / 1.6, 1e-9 * dp_alone);
}

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

// Kernels op_time.cpp counts in a block's forward: one per op with work, two for unfused attention's
// QK^T and AV, two per LoRA adapter (x.A and (xA).B).
double forward_kernels(const Block& b, bool flash) {
  double n = 0;
  for (const Op& op : b.ops) {
    if (op.kind == OpKind::gemm || op.kind == OpKind::router) n += op.flops > 0;
    else if (op.kind == OpKind::attention) n += op.flops > 0 ? (flash ? 1 : 2) : op.io_bytes > 0;
    else n += op.io_bytes > 0;
    if (op.lora_flops > 0) n += 2;
  }
  return n;
}

}  // namespace

TEST(HostCosts, OnACpuWorkerTheHostsCostAddsPerKernel) {
  for (bool flash : {true, false}) {
    Plan p = plan_on("cpu", 1, flash);
    const ShapeContext base = make_context(p);
    const double h = 20e-6;
    p.cluster.calibration = with("host_overhead_s", h);
    const ShapeContext host = make_context(p);
    const double k = forward_kernels(base.w.dense_layer, flash);
    EXPECT_GT(k, 8);
    EXPECT_NEAR(host.times.dense_layer.fwd - base.times.dense_layer.fwd, k * h, 1e-12) << "flash " << flash;
  }
}

TEST(HostCosts, OnAGpuTheSlowerOfHostAndDeviceSetsThePace) {
  Plan p = plan_on("h100-sxm-80gb", 1, true);
  const ShapeContext base = make_context(p);
  // 1 us of host time is less than any of tiny-llama's kernels on an H100 (each pays the preset's
  // 2 us fixed device cost): nothing moves.
  p.cluster.calibration = with("host_overhead_s", 1e-6);
  EXPECT_DOUBLE_EQ(make_context(p).times.dense_layer.fwd, base.times.dense_layer.fwd);
  // 1 s per kernel outlasts every kernel: the forward is 1 s per kernel launched.
  p.cluster.calibration = with("host_overhead_s", 1.0);
  EXPECT_DOUBLE_EQ(make_context(p).times.dense_layer.fwd, forward_kernels(base.w.dense_layer, true));
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

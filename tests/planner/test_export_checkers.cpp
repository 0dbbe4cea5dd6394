// The export checkers can fail: each takes a real export, changed by hand in one place so that it breaks one
// rule of its tool (the changes include what paraplan wrote before issue 10), and must name that rule; the
// unchanged export passes.
#include <gtest/gtest.h>

#include "export_fixture.hpp"
#include "paraplan/export.hpp"

using namespace paraplan::planner;
using exporttest::plan_of;

namespace {

struct Export {
  ExportFormat format;
  ExportResult result;
};

Export exported(ExportFormat f, const std::vector<std::string>& sets) {
  return {f, export_plan(plan_of(sets), f)};
}

// `from` replaced by `to` once (the test fails if `from` is not there).
Export changed(Export e, const std::string& from, const std::string& to) {
  const size_t at = e.result.text.find(from);
  EXPECT_NE(at, std::string::npos) << "no '" << from << "' in\n" << e.result.text;
  if (at != std::string::npos) e.result.text.replace(at, from.size(), to);
  return e;
}

Export note_changed(Export e, const std::string& from, const std::string& to) {
  bool found = false;
  for (auto& n : e.result.notes)
    if (const size_t at = n.find(from); at != std::string::npos && !found) {
      n.replace(at, from.size(), to);
      found = true;
    }
  EXPECT_TRUE(found) << "no note with '" << from << "'";
  return e;
}

std::vector<std::string> problems(const Export& e) {
  return exportcheck::check_export(e.format, e.result.text, e.result.notes);
}

// The problems, as one string for a failure message.
std::string all(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

// Exactly one problem, and it starts with `prefix`.
void breaks_one(const Export& e, const std::string& prefix) {
  const auto p = problems(e);
  ASSERT_EQ(p.size(), 1u) << all(p);
  EXPECT_EQ(p[0].rfind(prefix, 0), 0u) << p[0];
}

// A change that breaks several rules at once (a bad number feeds later ones): one of them starts with `prefix`.
void breaks(const Export& e, const std::string& prefix) {
  const auto p = problems(e);
  bool found = false;
  for (const auto& x : p) found = found || x.rfind(prefix, 0) == 0;
  EXPECT_TRUE(found) << "no problem starting '" << prefix << "' in:\n" << all(p);
}

}  // namespace

// LLaMA-3-8B, dp 4 x tp 2 on 8 GPUs, micro-batch 2: 1024 / (2 x 4) = 128 accumulation steps. DeepSpeed counts
// all 8 ranks: train_batch_size must be 2 x 128 x 8 = 2048; the 1024 paraplan wrote before fails its assertion.
TEST(ExportCheckers, DeepSpeedBatchAssertionHostfileKeysAndPartition) {
  const Export tp = exported(ExportFormat::deepspeed, {"parallel.dp=4", "parallel.tp=2", "parallel.zero=1",
                                                       "training.micro_batch=2", "training.recompute=\"none\""});
  EXPECT_TRUE(problems(tp).empty()) << all(problems(tp));
  breaks_one(changed(tp, "\"train_batch_size\": 2048", "\"train_batch_size\": 1024"), "deepspeed: train_batch_size !=");
  breaks_one(changed(tp, "\"stage\": 1", "\"stage\": 1, \"overlap_com\": true"), "deepspeed: unknown key zero_optimization.overlap_com");
  // A string stage is a type error (and the rules then read stage 0, which fp32 gradients break as well).
  breaks(changed(tp, "\"stage\": 1", "\"stage\": \"1\""), "deepspeed: zero_optimization.stage has the wrong type");
  // 16 GPUs = 2 nodes: the launcher needs the hostfile (the note paraplan wrote before had none).
  const Export two = exported(ExportFormat::deepspeed, {"parallel.dp=16", "cluster.gpus=16", "parallel.zero=1",
                                                        "training.recompute=\"none\""});
  EXPECT_TRUE(problems(two).empty()) << all(problems(two));
  breaks_one(note_changed(two, "--hostfile hostfile ", ""), "deepspeed: --num_nodes > 1 without --hostfile");
  breaks(note_changed(two, "--num_gpus 8", "--gpus 8"), "deepspeed launcher: unrecognized argument --gpus");
  // Pipeline dp 4 x pp 2: PipelineModule's grid gives world_size = dp = 4, so 1024 = 1 x 256 x 4.
  const Export pipe = exported(ExportFormat::deepspeed, {"parallel.dp=4", "parallel.pp=2", "parallel.zero=1",
                                                         "training.recompute=\"full\""});
  EXPECT_TRUE(problems(pipe).empty()) << all(problems(pipe));
  breaks_one(note_changed(pipe, "partition_method=\"type:LlamaDecoderLayer\"", "partition_method=\"parameters\""),
             "deepspeed: the pipeline note gives no type: partition_method");
  breaks_one(changed(pipe, "\"stage\": 1", "\"stage\": 2"), "deepspeed: ZeRO stage >= 2 with a PipelineModule");
}

TEST(ExportCheckers, MegatronFlagsBatchAndConnections) {
  // tp 2: Megatron asserts CUDA_DEVICE_MAX_CONNECTIONS=1 (what paraplan did not set before).
  const Export tp = exported(ExportFormat::megatron, {"parallel.dp=4", "parallel.tp=2", "parallel.sequence_parallel=true"});
  EXPECT_TRUE(problems(tp).empty()) << all(problems(tp));
  breaks_one(changed(tp, "export CUDA_DEVICE_MAX_CONNECTIONS=1\n", ""), "megatron: tp or cp > 1 asserts CUDA_DEVICE_MAX_CONNECTIONS=1");
  breaks_one(changed(tp, "--sequence-parallel", "--sequence-paralel"), "megatron: --sequence-paralel is not a flag");
  breaks(changed(tp, "--num-layers 32", "--num-layers 32.5"), "megatron: --num-layers '32.5' is not what argparse takes");
  breaks_one(changed(tp, "--normalization RMSNorm", "--normalization rmsnorm"), "megatron: --normalization 'rmsnorm' is not one of");
  // dp = 8 / 2 = 4 and micro-batch 1: a global batch of 1022 is not a multiple of 4.
  breaks_one(changed(tp, "--global-batch-size 1024", "--global-batch-size 1022"), "megatron: --global-batch-size not divisible");
  breaks(changed(tp, "--nproc-per-node 8", "--nproc-per-node 7"), "megatron: world size not divisible by tp x pp x cp");
  // Megatron-FSDP needs the variable unset (or > 1).
  const Export fsdp = exported(ExportFormat::megatron, {"parallel.zero=3"});
  EXPECT_TRUE(problems(fsdp).empty()) << all(problems(fsdp));
  breaks_one(changed(fsdp, "unset CUDA_DEVICE_MAX_CONNECTIONS", "export CUDA_DEVICE_MAX_CONNECTIONS=1"),
             "megatron: Megatron-FSDP asserts CUDA_DEVICE_MAX_CONNECTIONS unset or > 1");
  // 32 layers over pp 4: an uneven layout must still place all 32 (t*6 + t*10 + t*9 + t*6 = 31).
  const Export layout = exported(ExportFormat::megatron, {"parallel.dp=2", "parallel.pp=4", "parallel.layer_split=[6,10,9,7]"});
  EXPECT_TRUE(problems(layout).empty()) << all(problems(layout));
  breaks_one(changed(layout, "t*7L", "t*6L"), "megatron: layout's t count is not --num-layers");
  // The MoE all-to-all overlap: more than one CUDA connection, and Megatron-Core's own conditions.
  const Export moe = exported(ExportFormat::megatron, {"model=\"qwen3-30b-a3b\"", "training.seq_len=4096",
                                                       "training.global_batch=64", "training.recompute=\"none\"",
                                                       "parallel.dp=8", "parallel.ep=8", "parallel.ep_comm_overlap=true"});
  EXPECT_TRUE(problems(moe).empty()) << all(problems(moe));
  breaks_one(changed(moe, "CUDA_DEVICE_MAX_CONNECTIONS=32", "CUDA_DEVICE_MAX_CONNECTIONS=1"),
             "megatron: the MoE all-to-all overlap needs CUDA_DEVICE_MAX_CONNECTIONS > 1");
  breaks_one(changed(moe, "--moe-token-dispatcher-type alltoall", "--moe-token-dispatcher-type allgather"),
             "megatron: the MoE all-to-all overlap needs the alltoall or flex dispatcher");
  breaks_one(changed(moe, "--expert-model-parallel-size 8", "--expert-model-parallel-size 1"),
             "megatron: the MoE all-to-all overlap needs --expert-model-parallel-size > 1");
}

TEST(ExportCheckers, TorchtitanDegreesKeysAndBatch) {
  const Export t = exported(ExportFormat::torchtitan, {"parallel.zero=3", "training.recompute=\"none\""});
  EXPECT_TRUE(problems(t).empty()) << all(problems(t));
  // 8 GPUs: shard 4 x tp 1 x pp 1 x cp 1 = 4 ranks != 8.
  breaks_one(changed(t, "data_parallel_shard_degree = 8", "data_parallel_shard_degree = 4"),
             "torchtitan: dp_replicate x dp_shard x cp x tp x pp != WORLD_SIZE");
  breaks_one(changed(t, "fsdp_reshard_after_forward = \"always\"", "fsdp_reshard_after_forward = \"sometimes\""),
             "torchtitan: parallelism.fsdp_reshard_after_forward = sometimes is not a choice");
  breaks_one(changed(t, "seq_len = 8192", "seq_length = 8192"), "torchtitan: unknown key training.seq_length");
  // global 1020 is not a multiple of local 1 x dp 8.
  breaks_one(changed(t, "global_batch_size = 1024", "global_batch_size = 1020"), "torchtitan: global_batch_size not a multiple");
}

TEST(ExportCheckers, AccelerateKeysVersionsAndSizes) {
  const Export a = exported(ExportFormat::accelerate, {"parallel.dp=2", "parallel.tp=2", "parallel.cp=2", "parallel.zero=3",
                                                       "training.recompute=\"none\""});
  EXPECT_TRUE(problems(a).empty()) << all(problems(a));
  breaks_one(changed(a, "fsdp_reshard_after_forward: true", "fsdp_reshard_after_forward: FULL_SHARD"),
             "accelerate: FSDP2 needs fsdp_reshard_after_forward true/false");
  breaks_one(changed(a, "num_processes: 8", "num_processes: 8\nnum_gpus: 8"), "accelerate: unknown key num_gpus");
  // dp_shard 2 x tp 2 x cp 2 = 8 processes; 4 is wrong.
  breaks_one(changed(a, "parallelism_config_dp_shard_size: 2", "parallelism_config_dp_shard_size: 1"),
             "accelerate: parallelism sizes do not multiply to num_processes");
  breaks(changed(a, "fsdp_sync_module_states: true", "fsdp_sync_module_state: true"),
             "accelerate: fsdp_config.fsdp_sync_module_state is not an accelerate launch option");
}

TEST(ExportCheckers, SlurmAndTorchrunLines) {
  ExportOptions o;
  const Export s{ExportFormat::torchrun, export_plan(plan_of({"parallel.dp=16", "cluster.gpus=16"}), ExportFormat::torchrun, o)};
  EXPECT_TRUE(problems(s).empty()) << all(problems(s));
  breaks_one(changed(s, "--nproc-per-node=8", "--nproc-per-node=4"), "torchrun: torchrun's nnodes x nproc-per-node != the plan's ranks");
  breaks(changed(s, "--nproc-per-node=8", "--nprocs=8"), "torchrun: unrecognized argument --nprocs=8");
  breaks_one(changed(s, "--no-python ", ""), "torchrun: paraplan is not Python");
  breaks_one(changed(s, "--rdzv-endpoint=<first-node>:29500", "--rdzv-endpoint=<first-node>"), "torchrun: --rdzv-backend c10d needs");
  breaks_one(changed(s, "#SBATCH --gpus-per-node=8", "#SBATCH --gpus-per-node=4"), "torchrun: one GPU per task");
  // 2 nodes x 4 tasks = 8 ranks for a plan of dp 16.
  breaks_one(changed(s, "#SBATCH --ntasks-per-node=8\n#SBATCH --gpus-per-node=8", "#SBATCH --ntasks-per-node=4\n#SBATCH --gpus-per-node=4"),
             "torchrun: Slurm tasks != the plan's dp x tp x pp x cp ranks");
}

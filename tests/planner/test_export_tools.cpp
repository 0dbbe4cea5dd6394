// Exports judged by the tools' own rules (export_checkers.hpp): a matrix of plans through every format, and
// the defects found when the exports were run through DeepSpeed, Megatron-LM and accelerate themselves.
#include <gtest/gtest.h>

#include <map>

#include "export_fixture.hpp"
#include "paraplan/export.hpp"
#include "paraplan/plan_io.hpp"

using namespace paraplan::planner;
using exporttest::checked_export;
using exporttest::plan_of;
using nlohmann::json;

namespace {

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

// The violations of an export that fails, or "exported" when it succeeds.
std::vector<std::string> refusal(const Plan& p, ExportFormat f) {
  try {
    checked_export(p, f);
  } catch (const PlanError& e) {
    std::vector<std::string> out;
    for (const auto& v : e.violations()) out.push_back(v.to_string());
    return out;
  }
  return {"exported"};
}

bool any_starts(const std::vector<std::string>& v, const std::string& prefix) {
  for (const auto& x : v)
    if (x.rfind(prefix, 0) == 0) return true;
  return false;
}

}  // namespace

// Every plan of a matrix — five models, 8 to 64 GPUs on nodes of 8, every tp x pp x cp (x ep) shape that
// divides them, ZeRO 0-3, and four variants of recompute, precision, sequence parallelism, overlap, schedule,
// layer split and offload — exported to all five formats. Each export must pass its tool's checker
// (checked_export); each refusal must be a PlanError whose every line says the target cannot express a field.
TEST(ExportTools, EveryExportOfAPlanMatrixPassesItsToolsChecker) {
  std::map<ExportFormat, int> exported, refused;
  int plans = 0;
  for (const std::string model : {"llama3-8b", "llama3-70b", "mixtral-8x7b", "deepseek-v3", "gpt3-175b"}) {
    const bool moe = model == "mixtral-8x7b" || model == "deepseek-v3";
    const int layers = model == "llama3-70b" ? 80 : model == "deepseek-v3" ? 61 : model == "gpt3-175b" ? 96 : 32;
    for (const int gpus : {8, 16, 64})
      for (const int tp : {1, 2, 8})
        for (const int pp : {1, 2, 4})
          for (const int cp : {1, 2})
            for (const int ep : moe ? std::vector<int>{1, 8} : std::vector<int>{1})
              for (int zero = 0; zero <= 3; ++zero)
                for (int variant = 0; variant < 4; ++variant) {
                  if (gpus % (tp * pp * cp) != 0) continue;
                  const int dp = gpus / (tp * pp * cp);
                  if ((dp * cp) % ep != 0) continue;
                  std::vector<std::string> sets{
                      "model=\"" + model + "\"", "cluster.gpus=" + std::to_string(gpus), "parallel.dp=" + std::to_string(dp),
                      "parallel.tp=" + std::to_string(tp), "parallel.pp=" + std::to_string(pp), "parallel.cp=" + std::to_string(cp),
                      "parallel.ep=" + std::to_string(ep), "parallel.zero=" + std::to_string(zero),
                      "parallel.sequence_parallel=" + std::string(tp > 1 && variant % 2 == 0 ? "true" : "false")};
                  if (model == "gpt3-175b") sets.push_back("training.seq_len=2048");
                  if (variant == 0) sets.push_back("training.recompute=\"none\"");
                  if (variant == 1)
                    sets.insert(sets.end(), {"training.recompute=\"full\"", "training.precision=\"fp8\"", "parallel.dp_overlap=false"});
                  if (variant == 2 && pp > 1)
                    sets.insert(sets.end(), {"parallel.pp_schedule=\"interleaved\"", "parallel.virtual_stages=2"});
                  if (variant == 2 && tp > 1) sets.push_back("parallel.tp_comm_overlap=true");
                  if (variant == 3) {
                    sets.push_back("training.recompute=\"full\"");
                    if (zero >= 1) sets.push_back(zero == 3 ? "training.offload=\"optimizer+params\"" : "training.offload=\"optimizer\"");
                    if (pp > 1 && layers % pp == 0) {  // one layer moved from the first stage to the last
                      std::string split = "parallel.layer_split=[" + std::to_string(layers / pp - 1);
                      for (int s = 1; s + 1 < pp; ++s) split += "," + std::to_string(layers / pp);
                      sets.push_back(split + "," + std::to_string(layers / pp + 1) + "]");
                    }
                  }
                  Plan plan;
                  try {
                    plan = plan_of(sets);
                  } catch (const PlanError&) {
                    continue;  // a plan that cannot exist (validation has its own tests)
                  }
                  ++plans;
                  for (const ExportFormat f : {ExportFormat::megatron, ExportFormat::deepspeed, ExportFormat::torchtitan,
                                               ExportFormat::accelerate, ExportFormat::torchrun}) {
                    const std::vector<std::string> r = refusal(plan, f);
                    if (r == std::vector<std::string>{"exported"}) {
                      ++exported[f];
                      continue;
                    }
                    ++refused[f];
                    for (const auto& line : r)
                      EXPECT_NE(line.find(" cannot express this: "), std::string::npos) << to_string(f) << ": " << line;
                  }
                }
  }
  // Not a tuned number: a floor that keeps the matrix from passing by refusing (or skipping) everything.
  EXPECT_GE(plans, 1000);
  for (const ExportFormat f : {ExportFormat::megatron, ExportFormat::deepspeed, ExportFormat::torchtitan,
                               ExportFormat::accelerate, ExportFormat::torchrun}) {
    EXPECT_GE(exported[f], 20) << to_string(f) << " exported " << exported[f] << ", refused " << refused[f];
    RecordProperty(std::string(to_string(f)) + "_exported", exported[f]);
  }
}

// DeepSpeed reproduces a pipeline split only when every stage holds L/pp decoder layers: partition_method
// "type:<decoder class>" weighs those 1 and the embedding, norm and head 0 (pipe/module.py 412-417), and the
// one split of cost 0 gives each stage 32 / 4 = 8. Uneven splits — given, or the default for 61 layers over 2
// stages — have no method that reproduces them and are refused naming the field.
TEST(ExportTools, DeepSpeedPipelinePartitionAndHostfile) {
  const ExportResult r = checked_export(plan_of({"parallel.dp=2", "parallel.pp=4", "parallel.zero=1", "training.recompute=\"full\""}),
                                        ExportFormat::deepspeed);
  EXPECT_NE(joined(r.notes).find("num_stages=4, partition_method=\"type:LlamaDecoderLayer\""), std::string::npos) << joined(r.notes);
  EXPECT_NE(joined(r.notes).find("each stage gets 8 of them"), std::string::npos) << joined(r.notes);
  const auto uneven = refusal(plan_of({"parallel.dp=2", "parallel.pp=4", "parallel.zero=1", "training.recompute=\"full\"",
                                       "parallel.layer_split=[7,9,9,7]"}),
                              ExportFormat::deepspeed);
  EXPECT_TRUE(any_starts(uneven, "parallel.layer_split = [7, 9, 9, 7]: DeepSpeed cannot express this")) << joined(uneven);
  const auto default_uneven = refusal(plan_of({"model=\"deepseek-v3\"", "parallel.dp=4", "parallel.pp=2", "parallel.zero=1",
                                               "training.recompute=\"full\""}),
                                      ExportFormat::deepspeed);
  EXPECT_TRUE(any_starts(default_uneven, "parallel.pp = 2: DeepSpeed cannot express this")) << joined(default_uneven);
  // 16 GPUs on nodes of 8: launched once from the first node with a hostfile of 2 lines of 8 slots.
  const ExportResult two = checked_export(plan_of({"parallel.dp=16", "cluster.gpus=16", "parallel.zero=1", "training.recompute=\"none\""}),
                                          ExportFormat::deepspeed);
  EXPECT_NE(joined(two.notes).find("deepspeed --hostfile hostfile --num_nodes 2 --num_gpus 8 train.py"), std::string::npos);
  EXPECT_NE(joined(two.notes).find("hostfile: 2 lines, one per node, \"<hostname> slots=8\""), std::string::npos);
}

// Megatron-LM asserts CUDA_DEVICE_MAX_CONNECTIONS=1 when tp > 1 or cp > 1 before Blackwell, and Megatron-FSDP
// asserts it is not 1 (arguments.py 1143, 1413-1439): the sourced file sets or unsets it; with neither
// condition it leaves the variable alone.
TEST(ExportTools, MegatronDeviceConnections) {
  const std::string set = "\nexport CUDA_DEVICE_MAX_CONNECTIONS=1\nMEGATRON_ARGS=(", unset = "\nunset CUDA_DEVICE_MAX_CONNECTIONS\n";
  const std::string tp = checked_export(plan_of({"parallel.dp=4", "parallel.tp=2", "parallel.sequence_parallel=true"}), ExportFormat::megatron).text;
  EXPECT_NE(tp.find(set), std::string::npos) << tp;
  const std::string cp = checked_export(plan_of({"parallel.dp=4", "parallel.cp=2", "parallel.zero=1"}), ExportFormat::megatron).text;
  EXPECT_NE(cp.find(set), std::string::npos) << cp;
  const std::string dp = checked_export(plan_of({}), ExportFormat::megatron).text;
  EXPECT_EQ(dp.find("CUDA_DEVICE_MAX_CONNECTIONS=1"), std::string::npos) << dp;
  EXPECT_EQ(dp.find(unset), std::string::npos) << dp;
  const std::string fsdp = checked_export(plan_of({"parallel.dp=4", "parallel.tp=2", "parallel.sequence_parallel=true", "parallel.zero=3"}),
                                          ExportFormat::megatron).text;
  EXPECT_NE(fsdp.find(unset), std::string::npos) << fsdp;
  EXPECT_EQ(fsdp.find("export CUDA_DEVICE_MAX_CONNECTIONS"), std::string::npos) << fsdp;
}

// accelerate's FP8 runs on FSDP2, which would shard gradients and optimizer states of a ZeRO-0 plan over its 8
// data-parallel ranks: refused. On one GPU there is nothing to shard, so the same settings export.
TEST(ExportTools, AccelerateFp8DoesNotShardAZeroZeroPlan) {
  const auto r = refusal(plan_of({"parallel.zero=0", "training.precision=\"fp8\"", "training.recompute=\"none\""}), ExportFormat::accelerate);
  EXPECT_TRUE(any_starts(r, "parallel.zero = 0: accelerate cannot express this: accelerate's FP8 recipe")) << joined(r);
  const json one = cfgtest::parse_yaml(checked_export(plan_of({"parallel.zero=0", "parallel.dp=1", "cluster.gpus=1",
                                                               "training.global_batch=128", "training.precision=\"fp8\"",
                                                               "training.recompute=\"none\""}),
                                                      ExportFormat::accelerate)
                                           .text);
  EXPECT_EQ(one["fsdp_config"]["fsdp_version"], 2);
  EXPECT_EQ(one["num_processes"], 1);
}

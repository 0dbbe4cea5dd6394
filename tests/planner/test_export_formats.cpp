// Export to torchtitan (TOML), accelerate (YAML) and torchrun/Slurm: the files parse with strict readers
// and carry the plan's degrees, derived here by hand; plans the target cannot express name their field.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "config_parsers.hpp"
#include "export_fixture.hpp"
#include "paraplan/export.hpp"
#include "paraplan/plan_io.hpp"
#include "../test_dirs.hpp"

using namespace paraplan::planner;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// The example plan as FSDP runs it: ZeRO-3, no recompute (torchtitan and accelerate have no selective one).
Plan plan_of(std::vector<std::string> sets) {
  sets.insert(sets.begin(), {"parallel.zero=3", "training.recompute=\"none\""});
  return exporttest::plan_of(sets);
}

// The first violation whose text starts with `prefix`, or "" (then the test prints them all).
std::string error_starting(const Plan& p, ExportFormat f, const std::string& prefix) {
  try {
    exporttest::checked_export(p, f);
  } catch (const PlanError& e) {
    for (const auto& v : e.violations())
      if (v.to_string().rfind(prefix, 0) == 0) return v.to_string();
    return std::string("other errors: ") + e.what();
  }
  return "exported without error";
}

json toml(const Plan& p) { return cfgtest::parse_toml(exporttest::checked_export(p, ExportFormat::torchtitan).text); }
json yaml(const Plan& p) { return cfgtest::parse_yaml(exporttest::checked_export(p, ExportFormat::accelerate).text); }

std::vector<std::string> layers(int from, int to) {  // "layers.from" .. "layers.to-1"
  std::vector<std::string> v;
  for (int i = from; i < to; ++i) v.push_back("layers." + std::to_string(i));
  return v;
}

}  // namespace

// ---------------------------------------------------------------- torchtitan

TEST(ExportTorchtitan, Llama8bFsdp) {
  const json t = toml(plan_of({}));
  EXPECT_EQ(t["model"]["name"], "llama3");
  EXPECT_EQ(t["model"]["flavor"], "8B");
  EXPECT_EQ(t["optimizer"]["name"], "AdamW");
  EXPECT_EQ(t["training"]["local_batch_size"], 1);
  EXPECT_EQ(t["training"]["global_batch_size"], 1024);  // 128 accumulation steps of 1 x dp 8
  EXPECT_EQ(t["training"]["seq_len"], 8192);
  EXPECT_EQ(t["training"]["mixed_precision_param"], "bfloat16");
  EXPECT_EQ(t["training"]["mixed_precision_reduce"], "float32");
  EXPECT_EQ(t["training"]["enable_cpu_offload"], false);
  EXPECT_EQ(t["parallelism"]["data_parallel_replicate_degree"], 1);
  EXPECT_EQ(t["parallelism"]["data_parallel_shard_degree"], 8);
  EXPECT_EQ(t["parallelism"]["fsdp_reshard_after_forward"], "always");  // ZeRO-3
  EXPECT_EQ(t["parallelism"]["tensor_parallel_degree"], 1);
  EXPECT_EQ(t["parallelism"]["pipeline_parallel_degree"], 1);
  EXPECT_FALSE(t["parallelism"].contains("pipeline_parallel_schedule"));
  EXPECT_EQ(t["parallelism"]["context_parallel_degree"], 1);
  EXPECT_EQ(t["activation_checkpoint"]["mode"], "none");
}

// LLaMA-3-70B on 256 GPUs = dp 4 x tp 8 x pp 4 x cp 2, ZeRO-2: 80 layers / 4 stages = 20 each;
// local batch 1024 / 4 = 256 sequences cut into micro-batches of 1.
TEST(ExportTorchtitan, Llama70bFourDimensions) {
  const json t = toml(plan_of({"model=\"llama3-70b\"", "parallel.dp=4", "parallel.tp=8", "parallel.pp=4",
                               "parallel.cp=2", "parallel.zero=2", "parallel.sequence_parallel=true",
                               "training.recompute=\"full\"", "cluster.gpus=256"}));
  EXPECT_EQ(t["model"]["flavor"], "70B");
  const json& par = t["parallelism"];
  EXPECT_EQ(par["data_parallel_replicate_degree"], 1);
  EXPECT_EQ(par["data_parallel_shard_degree"], 4);
  EXPECT_EQ(par["fsdp_reshard_after_forward"], "never");  // ZeRO-2
  EXPECT_EQ(par["tensor_parallel_degree"], 8);
  EXPECT_EQ(par["enable_async_tensor_parallel"], false);
  EXPECT_EQ(par["pipeline_parallel_degree"], 4);
  EXPECT_EQ(par["pipeline_parallel_schedule"], "1F1B");
  EXPECT_EQ(par["pipeline_parallel_microbatch_size"], 1);
  EXPECT_EQ(par["context_parallel_degree"], 2);
  EXPECT_EQ(par["context_parallel_rotate_method"], "alltoall");
  EXPECT_EQ(t["training"]["local_batch_size"], 256);
  EXPECT_EQ(t["training"]["global_batch_size"], 1024);
  const json& parts = par["module_fqns_per_model_part"];
  ASSERT_EQ(parts.size(), 4u);
  std::vector<std::string> first{"tok_embeddings"}, last = layers(60, 80);
  for (const auto& l : layers(0, 20)) first.push_back(l);
  last.insert(last.end(), {"norm", "output"});
  EXPECT_EQ(parts[0].get<std::vector<std::string>>(), first);
  EXPECT_EQ(parts[1].get<std::vector<std::string>>(), layers(20, 40));
  EXPECT_EQ(parts[3].get<std::vector<std::string>>(), last);
  EXPECT_EQ(t["activation_checkpoint"]["mode"], "full");
}

// ZBV: 2 chunks per rank on 4 ranks = 8 parts of 32 / 8 = 4 layers.
TEST(ExportTorchtitan, ZeroBubbleV) {
  const json t = toml(plan_of({"parallel.dp=2", "parallel.pp=4", "parallel.pp_schedule=\"zbv\"", "parallel.virtual_stages=2"}));
  EXPECT_EQ(t["parallelism"]["pipeline_parallel_schedule"], "ZBVZeroBubble");
  const json& parts = t["parallelism"]["module_fqns_per_model_part"];
  ASSERT_EQ(parts.size(), 8u);
  EXPECT_EQ(parts[4].get<std::vector<std::string>>(), layers(16, 20));
  EXPECT_EQ(t["training"]["local_batch_size"], 512);  // 1024 / dp 2
}

TEST(ExportTorchtitan, DeepSeekV3ExpertsFp8AndAsyncTp) {
  const json d = toml(plan_of({"model=\"deepseek-v3\"", "parallel.ep=8", "training.precision=\"fp8\""}));
  EXPECT_EQ(d["model"]["name"], "deepseek_v3");
  EXPECT_EQ(d["model"]["flavor"], "671B");
  EXPECT_EQ(d["model"]["converters"], json::array({"quantize.linear.float8"}));
  EXPECT_EQ(d["parallelism"]["expert_parallel_degree"], 8);
  EXPECT_EQ(d["parallelism"]["expert_tensor_parallel_degree"], 1);  // = tp
  const json a = toml(plan_of({"parallel.dp=4", "parallel.tp=2", "parallel.sequence_parallel=true",
                               "parallel.tp_comm_overlap=true"}));
  EXPECT_EQ(a["parallelism"]["enable_async_tensor_parallel"], true);
  EXPECT_EQ(a["compile"]["enable"], true);  // async TP requires compiling the model
}

TEST(ExportTorchtitan, InexpressiblePlans) {
  const auto tt = ExportFormat::torchtitan;
  EXPECT_EQ(error_starting(plan_of({"parallel.zero=1"}), tt, "parallel.zero = 1: torchtitan cannot").substr(0, 36),
            "parallel.zero = 1: torchtitan cannot");
  EXPECT_NE(error_starting(plan_of({"training.recompute=\"selective\""}), tt, "training.recompute = selective")
                .find("cannot express"),
            std::string::npos);
  EXPECT_NE(error_starting(plan_of({"training.optimizer=\"sgd\""}), tt, "training.optimizer = sgd").find("Adam"),
            std::string::npos);
  EXPECT_NE(error_starting(plan_of({"parallel.dp=4", "parallel.tp=2"}), tt, "parallel.sequence_parallel = false")
                .find("SequenceParallel"),
            std::string::npos);
  EXPECT_NE(error_starting(plan_of({"parallel.zero=0", "parallel.dp=4", "parallel.tp=2",
                                    "parallel.sequence_parallel=true"}),
                           tt, "parallel.zero = 0")
                .find("1-D"),
            std::string::npos);
  EXPECT_NE(error_starting(plan_of({"model=\"mixtral-8x7b\""}), tt, "model = Mixtral-8x7B").find("flavor"),
            std::string::npos);
  // LLaMA 3 8B's sizes with a window are no registered flavor: the flavor would attend to every key.
  const std::string windowed = R"(model={"name": "w", "layers": 32, "hidden": 4096, "heads": 32, "kv_heads": 8,
      "ffn_hidden": 14336, "vocab": 128256, "sliding_window": 4096})";
  EXPECT_NE(error_starting(plan_of({windowed}), tt, "model = w").find("flavor"), std::string::npos);
  EXPECT_EQ(error_starting(plan_of({R"(model={"name": "w", "layers": 32, "hidden": 4096, "heads": 32, "kv_heads": 8,
      "ffn_hidden": 14336, "vocab": 128256})"}), tt, "model = w"), "exported without error");
  EXPECT_NE(error_starting(plan_of({"training.precision=\"fp16\"", "training.grad_dtype=\"fp16\""}), tt,
                           "training.precision = fp16")
                .find("bfloat16"),
            std::string::npos);
}

// ---------------------------------------------------------------- accelerate

TEST(ExportAccelerate, FullShardWithCheckpointing) {
  const json y = yaml(plan_of({"training.recompute=\"full\""}));
  EXPECT_EQ(y["compute_environment"], "LOCAL_MACHINE");
  EXPECT_EQ(y["distributed_type"], "FSDP");
  EXPECT_EQ(y["downcast_bf16"], "no");
  const json& f = y["fsdp_config"];
  EXPECT_EQ(f["fsdp_version"], 1);
  EXPECT_EQ(f["fsdp_sharding_strategy"], "FULL_SHARD");
  EXPECT_EQ(f["fsdp_reshard_after_forward"], "FULL_SHARD");
  EXPECT_EQ(f["fsdp_offload_params"], false);
  EXPECT_EQ(f["fsdp_auto_wrap_policy"], "TRANSFORMER_BASED_WRAP");
  EXPECT_EQ(f["fsdp_transformer_layer_cls_to_wrap"], "LlamaDecoderLayer");
  EXPECT_EQ(f["fsdp_state_dict_type"], "SHARDED_STATE_DICT");
  EXPECT_EQ(f["fsdp_activation_checkpointing"], true);
  EXPECT_EQ(y["mixed_precision"], "bf16");
  EXPECT_EQ(y["num_machines"], 1);
  EXPECT_EQ(y["num_processes"], 8);
  EXPECT_EQ(y["use_cpu"], false);
  EXPECT_FALSE(y.contains("parallelism_config"));
}

// The decoder-layer class FSDP wraps, by the config's model_type: the classes each model's code lists in
// _no_split_modules (transformers modeling_granite.py GraniteDecoderLayer, modeling_gpt_neox.py GPTNeoXLayer,
// modeling_starcoder2.py Starcoder2DecoderLayer; DeepSeek-V2's modeling_deepseek.py DeepseekV2DecoderLayer).
TEST(ExportAccelerate, WrapsTheDecoderLayerClassOfEachHfFamily) {
  const fs::path dir = paraplan::testing::fresh_dir("paraplan-export", "hf-families");
  const std::vector<std::pair<json, std::string>> families{
      {{{"model_type", "granite"}, {"hidden_size", 2048}, {"num_hidden_layers", 4}, {"num_attention_heads", 32},
        {"num_key_value_heads", 8}, {"intermediate_size", 8192}, {"vocab_size", 49155}},
       "GraniteDecoderLayer"},
      {{{"model_type", "gpt_neox"}, {"hidden_size", 768}, {"num_hidden_layers", 4}, {"num_attention_heads", 12},
        {"intermediate_size", 3072}, {"vocab_size", 50304}},
       "GPTNeoXLayer"},
      {{{"model_type", "starcoder2"}, {"hidden_size", 3072}, {"num_hidden_layers", 4}, {"num_attention_heads", 24},
        {"num_key_value_heads", 2}, {"intermediate_size", 12288}, {"vocab_size", 49152}},
       "Starcoder2DecoderLayer"},
      // DeepSeek-V2-Lite's sizes (deepseek-ai's modeling_deepseek.py, _no_split_modules).
      {{{"model_type", "deepseek_v2"}, {"hidden_size", 2048}, {"num_hidden_layers", 4}, {"num_attention_heads", 16},
        {"intermediate_size", 10944}, {"moe_intermediate_size", 1408}, {"vocab_size", 102400},
        {"n_routed_experts", 64}, {"n_shared_experts", 2}, {"num_experts_per_tok", 6}, {"first_k_dense_replace", 1},
        {"kv_lora_rank", 512}, {"qk_nope_head_dim", 128}, {"qk_rope_head_dim", 64}, {"v_head_dim", 128}},
       "DeepseekV2DecoderLayer"}};
  for (const auto& [config, layer_class] : families) {
    const fs::path file = dir / (config["model_type"].get<std::string>() + ".json");
    std::ofstream(file) << config.dump();
    const Plan p = plan_of({"model={\"hf_config\": \"" + file.string() + "\"}"});
    EXPECT_EQ(yaml(p)["fsdp_config"]["fsdp_transformer_layer_cls_to_wrap"], layer_class) << config["model_type"];
  }
}

TEST(ExportAccelerate, StrategiesMachinesOffloadPrecision) {
  EXPECT_EQ(yaml(plan_of({"parallel.zero=2"}))["fsdp_config"]["fsdp_sharding_strategy"], "SHARD_GRAD_OP");
  const json z0 = yaml(plan_of({"parallel.zero=0", "parallel.dp=16", "cluster.gpus=16"}));
  EXPECT_EQ(z0["fsdp_config"]["fsdp_sharding_strategy"], "NO_SHARD");
  EXPECT_EQ(z0["fsdp_config"]["fsdp_activation_checkpointing"], false);
  EXPECT_EQ(z0["num_machines"], 2);  // 16 GPUs, 8 per node
  EXPECT_EQ(z0["num_processes"], 16);
  EXPECT_EQ(yaml(plan_of({"training.offload=\"optimizer+params\""}))["fsdp_config"]["fsdp_offload_params"], true);
  EXPECT_EQ(yaml(plan_of({"training.precision=\"fp32\""}))["mixed_precision"], "no");
}

// 8 GPUs = dp 2 x tp 2 x cp 2 with ZeRO-3: FSDP2 and a ParallelismConfig.
TEST(ExportAccelerate, TensorAndContextParallelUseFsdp2) {
  const json y = yaml(plan_of({"parallel.dp=2", "parallel.tp=2", "parallel.cp=2"}));
  EXPECT_EQ(y["fsdp_config"]["fsdp_version"], 2);
  EXPECT_EQ(y["fsdp_config"]["fsdp_reshard_after_forward"], true);
  EXPECT_FALSE(y["fsdp_config"].contains("fsdp_sharding_strategy"));
  const json& pc = y["parallelism_config"];
  EXPECT_EQ(pc["parallelism_config_dp_replicate_size"], 1);
  EXPECT_EQ(pc["parallelism_config_dp_shard_size"], 2);
  EXPECT_EQ(pc["parallelism_config_tp_size"], 2);
  EXPECT_EQ(pc["parallelism_config_cp_size"], 2);
  EXPECT_EQ(pc["parallelism_config_cp_comm_strategy"], "alltoall");
}

TEST(ExportAccelerate, InexpressiblePlans) {
  const auto ac = ExportFormat::accelerate;
  EXPECT_NE(error_starting(plan_of({"parallel.zero=1"}), ac, "parallel.zero = 1: accelerate cannot")
                .find("optimizer-only"),
            std::string::npos);
  EXPECT_NE(error_starting(plan_of({"parallel.dp=4", "parallel.pp=2"}), ac, "parallel.pp = 2").find("pipeline"),
            std::string::npos);
  EXPECT_NE(error_starting(plan_of({"training.recompute=\"selective\""}), ac, "training.recompute = selective")
                .find("whole transformer layers"),
            std::string::npos);
  EXPECT_NE(error_starting(plan_of({"training.offload=\"optimizer\""}), ac, "training.offload = optimizer")
                .find("gradients"),
            std::string::npos);
  EXPECT_NE(error_starting(plan_of({"model=\"mixtral-8x7b\"", "parallel.ep=8"}), ac, "parallel.ep = 8")
                .find("expert"),
            std::string::npos);
  EXPECT_NE(error_starting(plan_of({"parallel.dp=4", "parallel.tp=2", "parallel.sequence_parallel=true"}), ac,
                           "parallel.sequence_parallel = true")
                .find("tp_plan"),
            std::string::npos);
}

// ---------------------------------------------------------------- torchrun / Slurm

// 16 GPUs on 2 nodes of 8: one task per rank, the plan embedded as it was after --set.
TEST(ExportTorchrun, TwoNodeSlurmScript) {
  const Plan p = plan_of({"parallel.dp=16", "cluster.gpus=16"});
  ExportOptions o;
  o.plan_name = "llama3-8b";
  const std::string text = exporttest::checked_export(p, ExportFormat::torchrun, o).text;
  const cfgtest::Sbatch b = cfgtest::parse_sbatch(text);
  EXPECT_EQ(b.options.at("nodes"), "2");
  EXPECT_EQ(b.options.at("ntasks-per-node"), "8");
  EXPECT_EQ(b.options.at("gpus-per-node"), "8");
  const Plan again = plan_from_json(b.plan);
  EXPECT_EQ(again.parallel.dp, 16);
  EXPECT_EQ(again.parallel.zero, 3);
  EXPECT_EQ(again.cluster.gpus, 16);
  EXPECT_EQ(b.torchrun.at("--nnodes"), "2");
  EXPECT_EQ(b.torchrun.at("--nproc-per-node"), "8");
  EXPECT_EQ(b.torchrun.at("--rdzv-backend"), "c10d");
  const std::vector<std::string> tail(b.torchrun_words.end() - 4, b.torchrun_words.end());
  EXPECT_EQ(tail, (std::vector<std::string>{"--no-python", "paraplan", "run", "plan.json"}));
  for (const char* env : {"RANK=$SLURM_PROCID", "WORLD_SIZE=$SLURM_NTASKS", "LOCAL_RANK=$SLURM_LOCALID"})
    EXPECT_NE(b.srun.find(env), std::string::npos) << env;
  EXPECT_NE(text.find("export MASTER_ADDR="), std::string::npos);
  EXPECT_NE(text.find("export MASTER_PORT=29500"), std::string::npos);
}

// The Slurm script is valid bash (bash -n parses it without running it).
TEST(ExportTorchrun, SlurmScriptIsValidBash) {
  if (!std::filesystem::exists("/bin/bash")) GTEST_SKIP() << "no /bin/bash to parse the script with";
  const std::string text = exporttest::checked_export(plan_of({"parallel.dp=16", "cluster.gpus=16"}), ExportFormat::torchrun).text;
  const auto path = std::filesystem::temp_directory_path() / "paraplan_job.sbatch";
  std::ofstream(path) << text;
  EXPECT_EQ(std::system(("/bin/bash -n " + path.string() + " 2>&1").c_str()), 0);
}

// CPU workers all run on one machine: one node, no GPUs to request.
TEST(ExportTorchrun, CpuWorkersOnOneMachine) {
  const Plan p = plan_of({"model=\"tiny-llama\"", "cluster.gpu=\"cpu\"", "cluster.gpus=4", "parallel.dp=4",
                          "training.precision=\"fp32\"", "training.seq_len=64", "training.global_batch=8"});
  const cfgtest::Sbatch b = cfgtest::parse_sbatch(exporttest::checked_export(p, ExportFormat::torchrun).text);
  EXPECT_EQ(b.options.at("nodes"), "1");
  EXPECT_EQ(b.options.at("ntasks-per-node"), "4");
  EXPECT_FALSE(b.options.count("gpus-per-node"));
  EXPECT_EQ(b.torchrun.at("--nproc-per-node"), "4");
}

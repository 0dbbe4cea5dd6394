// Export: every exported config parses, carries the plan's degrees (derived here by hand from the plan),
// and every plan the target cannot express is a PlanError naming the field.
#include <gtest/gtest.h>

#include <algorithm>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "config_parsers.hpp"
#include "export_fixture.hpp"
#include "paraplan/export.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/presets.hpp"

using namespace paraplan::planner;
using nlohmann::json;

namespace {

using exporttest::plan_of;

// The "field = value: rule" lines of the export's PlanError, empty when it succeeds.
std::vector<std::string> export_errors(const Plan& p, ExportFormat f) {
  try {
    exporttest::checked_export(p, f);
  } catch (const PlanError& e) {
    std::vector<std::string> out;
    for (const auto& v : e.violations()) out.push_back(v.to_string());
    return out;
  }
  return {};
}

bool has_error(const std::vector<std::string>& errs, const std::string& prefix) {
  for (const auto& e : errs)
    if (e.rfind(prefix, 0) == 0) return true;
  return false;
}

std::string all(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

}  // namespace

// ---------------------------------------------------------------- Megatron-LM

// A sliding window (Mistral's, StarCoder2's: each query attends to W keys, itself included) is Megatron's
// window_size (W - 1, 0), as Megatron-Bridge maps Hugging Face's sliding_window (gemma2_bridge.py); without
// it the exported model would attend to every earlier token. No window, no flag.
TEST(ExportMegatron, SlidingWindowIsWindowSize) {
  EXPECT_FALSE(cfgtest::parse_megatron(exporttest::checked_export(plan_of({}), ExportFormat::megatron).text)
                   .has("--window-size"));
  // Mistral-7B-v0.1's sizes, inline.
  const Plan p = plan_of({R"(model={"name": "mistral-7b", "layers": 32, "hidden": 4096, "heads": 32, "kv_heads": 8,
                                    "ffn_hidden": 14336, "vocab": 32000, "sliding_window": 4096})"});
  ASSERT_EQ(p.model.sliding_window, 4096);
  const cfgtest::Flags f = cfgtest::parse_megatron(exporttest::checked_export(p, ExportFormat::megatron).text);
  EXPECT_EQ(f.at("--window-size"), "4095,0");
}

// 64 GPUs = dp 8 x tp 2 x pp 4; interleaved with 2 virtual stages: 32 layers / (4 x 2) chunks = 4 each,
// so Megatron's even split needs only the virtual stage count. 1024 / (8 x 1) = 128 micro-batches per step.
TEST(ExportMegatron, Llama8bTensorPipelineInterleaved) {
  const Plan p = plan_of({"parallel.dp=8", "parallel.tp=2", "parallel.pp=4", "parallel.pp_schedule=interleaved",
                          "parallel.virtual_stages=2", "parallel.sequence_parallel=true", "parallel.zero=1",
                          "cluster.gpus=64"});
  const ExportResult r = exporttest::checked_export(p, ExportFormat::megatron);
  const cfgtest::Flags f = cfgtest::parse_megatron(r.text);
  EXPECT_EQ(f.at("--num-layers"), "32");
  EXPECT_EQ(f.at("--hidden-size"), "4096");
  EXPECT_EQ(f.at("--ffn-hidden-size"), "14336");
  EXPECT_EQ(f.at("--num-attention-heads"), "32");
  EXPECT_TRUE(f.has("--group-query-attention"));
  EXPECT_EQ(f.at("--num-query-groups"), "8");
  EXPECT_FALSE(f.has("--kv-channels"));  // 4096 / 32 = 128 = head_dim
  EXPECT_EQ(f.at("--seq-length"), "8192");
  EXPECT_EQ(f.at("--max-position-embeddings"), "8192");
  EXPECT_TRUE(f.has("--swiglu"));
  EXPECT_EQ(f.at("--normalization"), "RMSNorm");
  EXPECT_EQ(f.at("--position-embedding-type"), "rope");
  EXPECT_TRUE(f.has("--untie-embeddings-and-output-weights"));
  EXPECT_TRUE(f.has("--disable-bias-linear"));
  EXPECT_FALSE(f.has("--add-qkv-bias"));
  EXPECT_EQ(f.at("--hidden-dropout"), "0");
  EXPECT_EQ(f.at("--attention-dropout"), "0");
  // 128256 = 2^8 x 501: 128 x tp 2 = 256 divides it, so Megatron adds no padding.
  EXPECT_EQ(f.at("--make-vocab-size-divisible-by"), "128");
  EXPECT_EQ(f.at("--tensor-model-parallel-size"), "2");
  EXPECT_EQ(f.at("--pipeline-model-parallel-size"), "4");
  EXPECT_EQ(f.at("--context-parallel-size"), "1");
  EXPECT_FALSE(f.has("--expert-model-parallel-size"));  // dense model
  EXPECT_TRUE(f.has("--sequence-parallel"));
  EXPECT_EQ(f.at("--num-virtual-stages-per-pipeline-rank"), "2");
  EXPECT_FALSE(f.has("--pipeline-model-parallel-layout"));
  EXPECT_EQ(f.at("--micro-batch-size"), "1");
  EXPECT_EQ(f.at("--global-batch-size"), "1024");
  EXPECT_TRUE(f.has("--bf16"));
  EXPECT_TRUE(f.has("--accumulate-allreduce-grads-in-fp32"));
  EXPECT_EQ(f.at("--recompute-granularity"), "selective");
  EXPECT_FALSE(f.has("--recompute-method"));  // validate_args: no method with selective
  EXPECT_EQ(f.at("--attention-backend"), "flash");
  EXPECT_EQ(f.at("--optimizer"), "adam");
  EXPECT_TRUE(f.has("--use-distributed-optimizer"));
  EXPECT_TRUE(f.has("--overlap-grad-reduce"));
  EXPECT_TRUE(f.has("--overlap-param-gather"));
  EXPECT_FALSE(f.has("--use-megatron-fsdp"));
  EXPECT_FALSE(f.has("--no-overlap-p2p-communication"));  // Megatron-LM's default overlap, as the plan's
}

// parallel.pp_comm_overlap false: Megatron-LM overlaps the interleaved schedule's transfers unless told
// not to (arguments.py --no-overlap-p2p-communication); without virtual stages it never does, no flag.
TEST(ExportMegatron, BlockingPipelineTransfersAreAskedFor) {
  const std::vector<std::string> base = {"parallel.dp=8", "parallel.tp=2", "parallel.pp=4",
                                         "parallel.sequence_parallel=true", "cluster.gpus=64",
                                         "parallel.pp_comm_overlap=false"};
  std::vector<std::string> inter = base;
  inter.insert(inter.end(), {"parallel.pp_schedule=interleaved", "parallel.virtual_stages=2"});
  const ExportResult r = exporttest::checked_export(plan_of(inter), ExportFormat::megatron);
  EXPECT_TRUE(cfgtest::parse_megatron(r.text).has("--no-overlap-p2p-communication"));
  const ExportResult plain = exporttest::checked_export(plan_of(base), ExportFormat::megatron);
  EXPECT_FALSE(cfgtest::parse_megatron(plain.text).has("--no-overlap-p2p-communication"));
}

// The array is valid bash: sourcing it yields exactly the words the strict reader saw.
TEST(ExportMegatron, IsABashArray) {
  if (!std::filesystem::exists("/bin/bash")) GTEST_SKIP() << "no /bin/bash";
  const Plan p = plan_of({"model=\"deepseek-v3\"", "parallel.dp=8", "parallel.tp=2", "parallel.ep=8",
                          "parallel.sequence_parallel=true", "parallel.pp=4", "parallel.layer_split=[14,16,15,16]",
                          "cluster.gpus=64"});
  const std::string text = exporttest::checked_export(p, ExportFormat::megatron).text;
  const auto path = std::filesystem::temp_directory_path() / "paraplan_megatron_args.sh";
  std::ofstream(path) << text;
  const std::string cmd = "/bin/bash -c 'source " + path.string() + " && printf \"%s\\n\" \"${MEGATRON_ARGS[@]}\"'";
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::vector<std::string> words;
  char buf[4096];
  while (fgets(buf, sizeof buf, pipe)) {
    std::string w(buf);
    if (!w.empty() && w.back() == '\n') w.pop_back();
    words.push_back(w);
  }
  ASSERT_EQ(pclose(pipe), 0);
  EXPECT_EQ(words, cfgtest::parse_megatron(text).words);
}

// DeepSeek-V3: MLA and MoE flags from the preset (data/models/deepseek-v3.json).
TEST(ExportMegatron, DeepSeekV3MoeAndMla) {
  const Plan p = plan_of({"model=\"deepseek-v3\"", "parallel.dp=8", "parallel.tp=2", "parallel.ep=8",
                          "parallel.sequence_parallel=true", "cluster.gpus=16"});
  const cfgtest::Flags f = cfgtest::parse_megatron(exporttest::checked_export(p, ExportFormat::megatron).text);
  EXPECT_EQ(f.at("--num-experts"), "256");
  EXPECT_EQ(f.at("--moe-router-topk"), "8");
  EXPECT_EQ(f.at("--moe-ffn-hidden-size"), "2048");
  EXPECT_EQ(f.at("--moe-shared-expert-intermediate-size"), "2048");  // 1 shared expert x 2048
  EXPECT_EQ(f.at("--moe-layer-freq"), "([0]*3+[1]*58)");             // 3 dense + 58 MoE = 61 layers
  EXPECT_EQ(f.at("--expert-model-parallel-size"), "8");
  EXPECT_TRUE(f.has("--multi-latent-attention"));
  EXPECT_EQ(f.at("--q-lora-rank"), "1536");
  EXPECT_EQ(f.at("--kv-lora-rank"), "512");
  EXPECT_EQ(f.at("--qk-head-dim"), "128");
  EXPECT_EQ(f.at("--qk-pos-emb-head-dim"), "64");
  EXPECT_EQ(f.at("--v-head-dim"), "128");
  EXPECT_FALSE(f.has("--group-query-attention"));  // exclusive with MLA in validate_args
  EXPECT_FALSE(f.has("--kv-channels"));
  EXPECT_EQ(f.at("--ffn-hidden-size"), "18432");  // the 3 dense layers
}

// Uneven splits: only the first and last stage differ -> first/last flags; otherwise the layout string.
TEST(ExportMegatron, UnevenPipelineSplits) {
  const Plan a = plan_of({"parallel.dp=2", "parallel.pp=4", "parallel.layer_split=[7,9,9,7]"});
  const cfgtest::Flags fa = cfgtest::parse_megatron(exporttest::checked_export(a, ExportFormat::megatron).text);
  EXPECT_EQ(fa.at("--decoder-first-pipeline-num-layers"), "7");
  EXPECT_EQ(fa.at("--decoder-last-pipeline-num-layers"), "7");
  EXPECT_FALSE(fa.has("--pipeline-model-parallel-layout"));

  const Plan b = plan_of({"parallel.dp=2", "parallel.pp=4", "parallel.layer_split=[6,10,9,7]"});
  const cfgtest::Flags fb = cfgtest::parse_megatron(exporttest::checked_export(b, ExportFormat::megatron).text);
  EXPECT_EQ(fb.at("--pipeline-model-parallel-layout"), "Et*6|t*10|t*9|t*7L");
  EXPECT_FALSE(fb.has("--decoder-first-pipeline-num-layers"));

  // Interleaved, 2 x 4 chunks in model order: chunk i runs on pipeline rank i % 4.
  const Plan c = plan_of({"parallel.dp=2", "parallel.pp=4", "parallel.pp_schedule=interleaved",
                          "parallel.virtual_stages=2", "parallel.layer_split=[3,4,4,5,4,4,4,4]"});
  const cfgtest::Flags fc = cfgtest::parse_megatron(exporttest::checked_export(c, ExportFormat::megatron).text);
  EXPECT_EQ(fc.at("--pipeline-model-parallel-layout"), "Et*3|t*4|t*4|t*5|t*4|t*4|t*4|t*4L");
  EXPECT_FALSE(fc.has("--num-virtual-stages-per-pipeline-rank"));  // the layout implies it
}

// GPT-3 175B: learned positions, GeLU, LayerNorm, biases, tied embeddings; fp16 with fp16 gradients,
// ZeRO-0 without overlap, full recompute. Vocabulary 50257 is odd: tp 8 forces padding to 50264.
TEST(ExportMegatron, Gpt3LearnedPositionsFp16FullRecompute) {
  const Plan p = plan_of({"model=\"gpt3-175b\"", "training.seq_len=2048", "training.precision=\"fp16\"",
                          "training.grad_dtype=\"fp16\"", "training.recompute=\"full\"", "training.dropout=0.1",
                          "parallel.dp=1", "parallel.tp=8", "parallel.dp_overlap=false", "training.global_batch=8"});
  const ExportResult r = exporttest::checked_export(p, ExportFormat::megatron);
  const cfgtest::Flags f = cfgtest::parse_megatron(r.text);
  EXPECT_EQ(f.at("--position-embedding-type"), "learned_absolute");
  EXPECT_EQ(f.at("--max-position-embeddings"), "2048");
  EXPECT_FALSE(f.has("--swiglu"));
  EXPECT_EQ(f.at("--normalization"), "LayerNorm");
  EXPECT_FALSE(f.has("--untie-embeddings-and-output-weights"));
  EXPECT_FALSE(f.has("--disable-bias-linear"));
  EXPECT_EQ(f.at("--hidden-dropout"), "0.1");
  EXPECT_EQ(f.at("--make-vocab-size-divisible-by"), "1");
  EXPECT_TRUE(f.has("--fp16"));
  EXPECT_FALSE(f.has("--bf16"));
  EXPECT_FALSE(f.has("--accumulate-allreduce-grads-in-fp32"));
  EXPECT_EQ(f.at("--recompute-granularity"), "full");
  EXPECT_EQ(f.at("--recompute-method"), "uniform");
  EXPECT_EQ(f.at("--recompute-num-layers"), "1");
  EXPECT_FALSE(f.has("--use-distributed-optimizer"));
  EXPECT_FALSE(f.has("--overlap-grad-reduce"));
  bool padded = false;
  for (const auto& n : r.notes) padded = padded || n.find("from 50257 to 50264") != std::string::npos;
  EXPECT_TRUE(padded);
}

TEST(ExportMegatron, ZeroThreeIsMegatronFsdp) {
  const cfgtest::Flags f =
      cfgtest::parse_megatron(exporttest::checked_export(plan_of({"parallel.zero=3"}), ExportFormat::megatron).text);
  EXPECT_TRUE(f.has("--use-megatron-fsdp"));
  EXPECT_EQ(f.at("--data-parallel-sharding-strategy"), "optim_grads_params");
  EXPECT_EQ(f.at("--ckpt-format"), "fsdp_dtensor");
  const cfgtest::Flags g =
      cfgtest::parse_megatron(exporttest::checked_export(plan_of({"parallel.zero=2"}), ExportFormat::megatron).text);
  EXPECT_EQ(g.at("--data-parallel-sharding-strategy"), "optim_grads");
  const cfgtest::Flags h = cfgtest::parse_megatron(
      exporttest::checked_export(plan_of({"parallel.zero=1", "training.offload=\"optimizer\""}), ExportFormat::megatron).text);
  EXPECT_TRUE(h.has("--optimizer-cpu-offload"));
  EXPECT_TRUE(h.has("--use-precision-aware-optimizer"));
}

TEST(ExportMegatron, InexpressiblePlansNameEveryField) {
  const auto errs = export_errors(
      plan_of({"training.lora={\"rank\": 8}", "training.optimizer=\"adam8bit\"", "parallel.dp=4", "parallel.pp=2",
               "parallel.pp_schedule=\"gpipe\""}),
      ExportFormat::megatron);
  EXPECT_EQ(errs.size(), 3u) << all(errs);
  EXPECT_TRUE(has_error(errs, "training.lora = {rank 8}: Megatron-LM cannot express this")) << all(errs);
  EXPECT_TRUE(has_error(errs, "training.optimizer = adam8bit: Megatron-LM cannot express this")) << all(errs);
  EXPECT_TRUE(has_error(errs, "parallel.pp_schedule = gpipe: Megatron-LM cannot express this")) << all(errs);
  EXPECT_TRUE(has_error(export_errors(plan_of({"parallel.zero=3", "training.offload=\"optimizer+params\""}),
                                      ExportFormat::megatron),
                        "training.offload = optimizer+params"));
  EXPECT_TRUE(has_error(export_errors(plan_of({"training.optimizer=\"adam\""}), ExportFormat::megatron),
                        "training.optimizer = adam"));
  EXPECT_TRUE(has_error(export_errors(plan_of({"parallel.dp=4", "parallel.tp=2", "parallel.tp_comm_overlap=true"}),
                                      ExportFormat::megatron),
                        "parallel.tp_comm_overlap = true"));
  // Megatron-Core biases every linear (add_bias_linear) or q, k, v alone (add_qkv_bias): LLaMA's
  // attention_bias (q, k, v, o) and mlp_bias have no flag, where the export used to drop them.
  const std::string sizes = R"("name": "b", "layers": 2, "hidden": 1024, "heads": 8, "ffn_hidden": 4096, "vocab": 32000)";
  for (const char* bias : {"attention", "mlp"})
    EXPECT_TRUE(has_error(export_errors(plan_of({"model={" + sizes + ", \"bias\": \"" + bias + "\"}"}),
                                        ExportFormat::megatron),
                          std::string("model.bias = ") + bias + ": Megatron-LM cannot express this"))
        << bias;
  for (const char* bias : {"none", "qkv", "all"})
    EXPECT_TRUE(export_errors(plan_of({"model={" + sizes + ", \"bias\": \"" + bias + "\"}"}), ExportFormat::megatron)
                    .empty())
        << bias;
}

// The MoE layer as the planner costs it (Megatron-Core's all-to-all dispatcher with TE's grouped GEMM and
// fused permutation and router; the defaults are the all-gather dispatcher and none of them), and the
// all-to-all overlap when the plan asks for it: the flag, and more than one CUDA connection, which the
// overlap needs (moe/README.md) and which wins over tp's ordering (arguments.py only warns). Without
// expert parallelism there is nothing to overlap: a note, no flag; with pp > 1 it needs a virtual pipeline.
TEST(ExportMegatron, MoeDispatcherAndAllToAllOverlap) {
  const std::vector<std::string> moe = {"model=\"qwen3-30b-a3b\"", "training.seq_len=4096", "training.global_batch=64",
                                        "training.recompute=\"none\"", "parallel.dp=8", "parallel.ep=8",
                                        "parallel.ep_comm_overlap=true"};
  const ExportResult r = exporttest::checked_export(plan_of(moe), ExportFormat::megatron);
  const cfgtest::Flags f = cfgtest::parse_megatron(r.text);
  EXPECT_EQ(f.at("--moe-token-dispatcher-type"), "alltoall");
  EXPECT_TRUE(f.has("--moe-grouped-gemm"));
  EXPECT_TRUE(f.has("--moe-permute-fusion"));
  EXPECT_TRUE(f.has("--moe-router-fusion"));
  EXPECT_TRUE(f.has("--overlap-moe-expert-parallel-comm"));
  EXPECT_NE(r.text.find("\nexport CUDA_DEVICE_MAX_CONNECTIONS=32\n"), std::string::npos) << r.text;
  std::vector<std::string> tp2 = moe;
  tp2.insert(tp2.end(), {"parallel.tp=2", "parallel.dp=4", "parallel.ep=4", "parallel.sequence_parallel=true"});
  const ExportResult t = exporttest::checked_export(plan_of(tp2), ExportFormat::megatron);
  EXPECT_NE(t.text.find("\nexport CUDA_DEVICE_MAX_CONNECTIONS=32\n"), std::string::npos) << t.text;
  EXPECT_TRUE(std::any_of(t.notes.begin(), t.notes.end(),
                          [](const std::string& n) { return n.find("sets 32 for the all-to-all overlap") != std::string::npos; }));
  std::vector<std::string> no_ep = moe;
  no_ep.push_back("parallel.ep=1");
  const ExportResult n = exporttest::checked_export(plan_of(no_ep), ExportFormat::megatron);
  EXPECT_FALSE(cfgtest::parse_megatron(n.text).has("--overlap-moe-expert-parallel-comm"));
  EXPECT_TRUE(std::any_of(n.notes.begin(), n.notes.end(),
                          [](const std::string& s) { return s.find("nothing to overlap with ep = 1") != std::string::npos; }));
  std::vector<std::string> piped = moe;
  piped.insert(piped.end(), {"parallel.pp=2", "parallel.dp=4", "parallel.ep=4"});
  EXPECT_TRUE(has_error(export_errors(plan_of(piped), ExportFormat::megatron), "parallel.ep_comm_overlap = true"));
  EXPECT_TRUE(has_error(export_errors(plan_of(moe), ExportFormat::torchtitan), "parallel.ep_comm_overlap = true"));
}

// Qwen3's per-head query and key norms are Megatron-Core's qk_layernorm (transformer_config.py), so its
// export says --qk-layernorm. Transformer Engine's fused cross entropy, which the Megatron-Bridge rows
// assume, is what pretrain_gpt.py refuses at core_v0.19.0 (arguments.py), and what the Transformers and
// torchtitan losses are not: every format names the field.
TEST(ExportMegatron, QkNormAndTheFusedCrossEntropy) {
  const std::vector<std::string> qwen = {"model=\"qwen3-30b-a3b\"", "training.seq_len=4096", "training.global_batch=64",
                                         "parallel.dp=8", "parallel.ep=8"};
  const ExportResult r = exporttest::checked_export(plan_of(qwen), ExportFormat::megatron);
  EXPECT_TRUE(cfgtest::parse_megatron(r.text).has("--qk-layernorm")) << r.text;
  EXPECT_FALSE(cfgtest::parse_megatron(exporttest::checked_export(plan_of({}), ExportFormat::megatron).text)
                   .has("--qk-layernorm"));
  std::vector<std::string> te = qwen;
  te.push_back("training.cross_entropy=\"te\"");
  for (ExportFormat f : {ExportFormat::megatron, ExportFormat::deepspeed, ExportFormat::torchtitan, ExportFormat::accelerate})
    EXPECT_TRUE(has_error(export_errors(plan_of(te), f), "training.cross_entropy = te")) << static_cast<int>(f);
  // LLaMA-3-8B with query/key norms is no torchtitan flavor (llama3's attention has none): refused, not
  // exported as the plain 8B.
  json llama = model_to_json(model_preset("llama3-8b"));
  llama["qk_norm"] = true;
  const std::string none = "training.recompute=\"none\"";
  EXPECT_TRUE(has_error(export_errors(plan_of({"model=" + llama.dump(), none}), ExportFormat::torchtitan), "model"));
  EXPECT_NE(exporttest::checked_export(plan_of({none}), ExportFormat::torchtitan).text.find("\"8B\""), std::string::npos);
}

TEST(ExportFormatName, UnknownNameIsAPlanError) {
  EXPECT_EQ(parse_export_format("torchtitan"), ExportFormat::torchtitan);
  try {
    parse_export_format("deepsped");
    FAIL();
  } catch (const PlanError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean deepspeed?"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------- DeepSpeed

// ZeRO-2 with optimizer offload on 8 GPUs: train_batch_size 1024 = micro 1 x 128 accumulation steps x dp 8.
TEST(ExportDeepSpeed, ZeroTwoOffloadFullRecompute) {
  const Plan p = plan_of({"parallel.zero=2", "training.offload=\"optimizer\"", "training.recompute=\"full\""});
  const json c = json::parse(exporttest::checked_export(p, ExportFormat::deepspeed).text);
  EXPECT_EQ(c["train_batch_size"], 1024);
  EXPECT_EQ(c["train_micro_batch_size_per_gpu"], 1);
  EXPECT_EQ(c["gradient_accumulation_steps"], 128);
  EXPECT_EQ(c["bf16"]["enabled"], true);
  EXPECT_FALSE(c.contains("fp16"));
  EXPECT_EQ(c["data_types"]["grad_accum_dtype"], "fp32");
  EXPECT_EQ(c["zero_optimization"]["stage"], 2);
  EXPECT_EQ(c["zero_optimization"]["overlap_comm"], true);
  EXPECT_EQ(c["zero_optimization"]["contiguous_gradients"], true);
  EXPECT_EQ(c["zero_optimization"]["offload_optimizer"]["device"], "cpu");
  EXPECT_FALSE(c["zero_optimization"].contains("offload_param"));
  EXPECT_EQ(c["optimizer"]["type"], "AdamW");
  EXPECT_EQ(c["activation_checkpointing"]["cpu_checkpointing"], false);
  EXPECT_FALSE(c.contains("tensor_parallel"));
  EXPECT_FALSE(c.contains("pipeline"));
}

TEST(ExportDeepSpeed, ZeroThreeParameterOffloadAndClassicAdam) {
  const Plan p = plan_of({"parallel.zero=3", "training.offload=\"optimizer+params\"", "training.recompute=\"none\"",
                          "training.optimizer=\"adam\"", "parallel.dp_overlap=false"});
  const json c = json::parse(exporttest::checked_export(p, ExportFormat::deepspeed).text);
  EXPECT_EQ(c["zero_optimization"]["stage"], 3);
  EXPECT_EQ(c["zero_optimization"]["overlap_comm"], false);
  EXPECT_EQ(c["zero_optimization"]["offload_param"]["device"], "cpu");
  EXPECT_EQ(c["optimizer"]["type"], "Adam");
  EXPECT_EQ(c["optimizer"]["params"]["adam_w_mode"], false);
  EXPECT_FALSE(c.contains("activation_checkpointing"));
}

// AutoTP: 8 GPUs = dp 4 x tp 2, micro-batch 2, so 1024 / (2 x 4) = 128 accumulation steps. DeepSpeed builds its
// config without an mpu and counts all 8 ranks as data parallel (runtime/config.py 712), asserting
// train_batch_size = 2 x 128 x 8 = 2048 (config.py 924); the 4 distinct data-parallel replicas still train
// 2 x 128 x 4 = 1024 sequences, the plan's global batch, because the 2 ranks of a TP group read the same ones.
TEST(ExportDeepSpeed, AutoTpAndBatchIdentity) {
  const Plan p = plan_of({"parallel.dp=4", "parallel.tp=2", "parallel.zero=1", "training.micro_batch=2",
                          "training.recompute=\"none\""});
  const ExportResult r = exporttest::checked_export(p, ExportFormat::deepspeed);
  const json c = json::parse(r.text);
  EXPECT_EQ(c["tensor_parallel"]["autotp_size"], 2);
  EXPECT_EQ(c["train_micro_batch_size_per_gpu"], 2);
  EXPECT_EQ(c["gradient_accumulation_steps"], 128);
  EXPECT_EQ(c["train_batch_size"].get<int>(), 2 * 128 * 8);
  bool explained = false, data = false;
  for (const auto& n : r.notes) {
    explained = explained || n.find("train_batch_size is 2048") != std::string::npos;
    data = data || n.find("get_data_parallel_rank()") != std::string::npos;
  }
  EXPECT_TRUE(explained && data);
}

// Pipeline with ZeRO-1: the PipelineEngine's micro-batches are gradient_accumulation_steps (1024 / 4 = 256).
TEST(ExportDeepSpeed, PipelineZeroOne) {
  const Plan p = plan_of({"parallel.dp=4", "parallel.pp=2", "parallel.zero=1", "training.recompute=\"full\""});
  const json c = json::parse(exporttest::checked_export(p, ExportFormat::deepspeed).text);
  EXPECT_EQ(c["gradient_accumulation_steps"], 256);
  EXPECT_EQ(c["pipeline"]["activation_checkpoint_interval"], 1);
}

TEST(ExportDeepSpeed, MixtralAutoEp) {
  const Plan p = plan_of({"model=\"mixtral-8x7b\"", "parallel.ep=8", "parallel.zero=1", "training.recompute=\"none\""});
  const json c = json::parse(exporttest::checked_export(p, ExportFormat::deepspeed).text);
  EXPECT_EQ(c["expert_parallel"]["enabled"], true);
  EXPECT_EQ(c["expert_parallel"]["autoep_size"], 8);
}

TEST(ExportDeepSpeed, InexpressiblePlans) {
  auto errs = export_errors(plan_of({"parallel.dp=4", "parallel.cp=2"}), ExportFormat::deepspeed);
  EXPECT_TRUE(has_error(errs, "parallel.cp = 2: DeepSpeed cannot express this: DeepSpeed's sequence parallelism"))
      << all(errs);
  EXPECT_TRUE(has_error(errs, "training.recompute = selective")) << all(errs);  // both at once
  errs = export_errors(plan_of({"parallel.dp=4", "parallel.pp=2", "parallel.zero=2", "training.recompute=\"none\""}),
                       ExportFormat::deepspeed);
  EXPECT_TRUE(has_error(errs, "parallel.zero = 2: DeepSpeed cannot express this: ZeRO-2 and ZeRO-3 are incompatible"))
      << all(errs);
  errs = export_errors(plan_of({"training.recompute=\"none\""}), ExportFormat::deepspeed);  // ZeRO-0, fp32 grads
  EXPECT_TRUE(has_error(errs, "training.grad_dtype = fp32")) << all(errs);
  errs = export_errors(plan_of({"parallel.dp=4", "parallel.tp=2", "parallel.sequence_parallel=true", "parallel.zero=1",
                                "training.recompute=\"none\""}),
                       ExportFormat::deepspeed);
  EXPECT_TRUE(has_error(errs, "parallel.sequence_parallel = true")) << all(errs);
  errs = export_errors(plan_of({"parallel.zero=1", "training.precision=\"fp8\"", "training.recompute=\"none\""}),
                       ExportFormat::deepspeed);
  EXPECT_TRUE(has_error(errs, "training.precision = fp8")) << all(errs);
}

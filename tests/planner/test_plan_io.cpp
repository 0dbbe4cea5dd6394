// The plan format: defaults, round trip, Hugging Face configs, and a message for every broken rule.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "paraplan/calibration.hpp"
#include "paraplan/params.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/presets.hpp"
#include "plan_errors.hpp"

using namespace paraplan::planner;
using nlohmann::json;
using plantest::errors_of;
using plantest::mentions;
using plantest::with;

namespace {

json example() {
  return json::parse(R"({"model": "llama3-8b",
    "training": {"seq_len": 8192, "micro_batch": 1, "global_batch": 1024, "precision": "bf16",
                 "grad_dtype": "fp32", "optimizer": "adamw", "recompute": "selective",
                 "flash_attention": true, "lora": null, "offload": "none"},
    "parallel": {"dp": 8, "tp": 1, "pp": 1, "cp": 1, "ep": 1, "zero": 0, "sequence_parallel": false,
                 "pp_schedule": "1f1b", "virtual_stages": 1},
    "cluster": {"gpu": "h100-sxm-80gb", "gpus": 8, "gpus_per_node": 8}})");
}

}  // namespace

// Without cluster.gpus_per_node, a node is the GPUs of one NVLink domain the job holds (hardware.hpp
// default_gpus_per_node). By hand: an HGX/DGX server, 8 whatever the count; GB200 NVL72 (18 trays of 4
// per rack): up to 18 trays, every GPU (8 -> 8, 72 -> 72); beyond, 4 x the largest divisor of the tray
// count not above 18 (Megatron-Bridge's Slurm --segment): 256 GPUs = 64 trays -> 16 -> 64; 144 = 36
// trays -> 18 -> 72; 96 = 24 trays -> 12 -> 48; 1000 = 250 trays -> 10 -> 40. CPU workers: all of them.
TEST(PlanFormat, GpusPerNodeDefaultsToTheNvlinkDomainTheJobHolds) {
  const GpuSpec h100 = hardware_preset("h100-sxm-80gb"), gb200 = hardware_preset("gb200");
  EXPECT_EQ(default_gpus_per_node(h100, 4), 8);
  EXPECT_EQ(default_gpus_per_node(h100, 1024), 8);
  EXPECT_EQ(gb200.nvlink_tray_gpus, 4);
  EXPECT_EQ(gb200.nvlink_domain_trays, 18);
  for (const auto& [gpus, per_node] : {std::pair{8, 8}, {72, 72}, {256, 64}, {144, 72}, {96, 48}, {1000, 40}})
    EXPECT_EQ(default_gpus_per_node(gb200, gpus), per_node) << gpus;
  EXPECT_EQ(default_gpus_per_node(hardware_preset("cpu"), 6), 6);
  // Through the plan format, and a plan's own gpus_per_node wins.
  json j = example();
  j["cluster"] = {{"gpu", "gb200"}, {"gpus", 256}};
  j["parallel"]["dp"] = 256;
  j["training"]["global_batch"] = 1024;
  EXPECT_EQ(plan_from_json(j).cluster.gpus_per_node, 64);
  j["cluster"]["gpus_per_node"] = 4;
  EXPECT_EQ(plan_from_json(j).cluster.gpus_per_node, 4);
  // An inline GPU may describe its own domain: trays of 2, 4 to a domain; 24 GPUs = 12 trays -> 4 -> 8.
  json custom = gpu_to_json(gb200);
  custom["nvlink_tray_gpus"] = 2;
  custom["nvlink_domain_trays"] = 4;
  j["cluster"] = {{"gpu", custom}, {"gpus", 24}};
  j["parallel"]["dp"] = 24;
  j["training"]["global_batch"] = 48;
  EXPECT_EQ(plan_from_json(j).cluster.gpus_per_node, 8);
  // One of the two alone would be ignored: refused, naming it.
  custom.erase("nvlink_domain_trays");
  j["cluster"] = {{"gpu", custom}, {"gpus", 24}};
  EXPECT_TRUE(mentions(errors_of(j), "cluster.gpu.nvlink_tray_gpus = 2: describes a rack-scale NVLink domain only with both"));
}

TEST(PlanFormat, ParsesTheIssueExample) {
  const Plan p = plan_from_json(example());
  EXPECT_EQ(p.model.layers, 32);
  EXPECT_EQ(p.parallel.dp, 8);
  EXPECT_EQ(p.training.recompute, Recompute::selective);
  EXPECT_EQ(p.micro_batches(), 128);
  EXPECT_EQ(p.framework(), Framework::megatron);
}

TEST(PlanFormat, Defaults) {
  // head_dim defaults to hidden/heads, kv_heads to heads; dp to what the cluster leaves over.
  const Plan p = plan_from_json(json::parse(R"({"model": {"layers": 4, "hidden": 512, "heads": 8,
      "ffn_hidden": 2048, "vocab": 1000}, "parallel": {"tp": 2}, "cluster": {"gpus": 8}})"));
  EXPECT_EQ(p.model.head_dim, 64);
  EXPECT_EQ(p.model.kv_heads, 8);
  EXPECT_EQ(p.parallel.dp, 4);
  EXPECT_EQ(p.training.global_batch, 4);  // one micro-batch per rank per step
  EXPECT_EQ(p.cluster.gpu.id, "h100-sxm-80gb");
  EXPECT_EQ(p.training.recompute, Recompute::none);
}

TEST(PlanFormat, RoundTrip) {
  json doc = example();
  doc["training"]["lora"] = {{"rank", 16}, {"alpha", 32}, {"targets", {"q_proj", "down_proj"}}, {"base", "nf4"}};
  doc["parallel"]["layer_split"] = {32};
  const Plan a = plan_from_json(doc);
  const json written = plan_to_json(a);
  const Plan b = plan_from_json(written);
  EXPECT_EQ(plan_to_json(b), written);
  EXPECT_EQ(written["model"], "llama3-8b");
  EXPECT_EQ(b.training.lora->targets, static_cast<unsigned>(kQProj | kDownProj));
  EXPECT_EQ(b.training.lora->base, LoraBase::nf4);
}

TEST(PlanFormat, Overrides) {
  json doc = example();
  apply_override(doc, "parallel.zero=3");
  apply_override(doc, "training.precision=fp16");
  apply_override(doc, "cluster.gpu=a100-80gb");
  const Plan p = plan_from_json(doc);
  EXPECT_EQ(p.parallel.zero, 3);
  EXPECT_EQ(p.training.precision, Precision::fp16);
  EXPECT_EQ(p.cluster.gpu.id, "a100-80gb");
  try {
    apply_override(doc, "no-equals-sign");
    ADD_FAILURE() << "an override without '=' was accepted";
  } catch (const PlanError& e) {
    EXPECT_NE(std::string(e.what()).find("--set = \"no-equals-sign\": must look like section.field=value"), std::string::npos)
        << e.what();
  }
}

TEST(PlanFormat, UnknownFieldsSuggestTheClosest) {
  auto e = errors_of(with(example(), "training.seq_length=4096"));
  EXPECT_TRUE(mentions(e, "training.seq_length: unknown field (did you mean training.seq_len?)")) << e[0];
  e = errors_of(with(example(), "parallel.tensor_parallel=2"));
  EXPECT_TRUE(mentions(e, "parallel.tensor_parallel: unknown field")) << e[0];
  e = errors_of(with(example(), "model=llama3_8b"));
  EXPECT_TRUE(mentions(e, "did you mean \"llama3-8b\"")) << e[0];
  e = errors_of(with(example(), "training.optimizer=adam_w"));
  EXPECT_TRUE(mentions(e, "training.optimizer = \"adam_w\": must be one of")) << e[0];
  EXPECT_TRUE(mentions(e, "did you mean \"adamw\"")) << e[0];
}

TEST(PlanFormat, MalformedJson) {
  try {
    parse_json_text("{\"model\": \"llama3-8b\",\n \"training\": {seq_len: 1}}", "plan.json");
    FAIL();
  } catch (const PlanError& e) {
    EXPECT_NE(std::string(e.what()).find("plan.json: malformed JSON at line 2"), std::string::npos) << e.what();
  }
}

// Every rule of the plan format, broken once: the message names the field, the value and the rule.
TEST(PlanFormat, EveryRuleHasAMessage) {
  struct Case {
    std::vector<std::string> sets;
    std::string expected;
  } cases[] = {
      {{"cluster.gpus=16"}, "cluster.gpus = 16: must equal dp*tp*pp*cp = 8*1*1*1 = 8"},
      {{"parallel.tp=3", "parallel.dp=1", "cluster.gpus=3", "training.global_batch=8"},
       "parallel.tp = 3: must divide model.heads (32)"},
      // 24 heads, 6 key/value heads: tp 4 divides the heads, but neither divides nor is a multiple of 6.
      {{R"(model={"layers": 32, "hidden": 3072, "heads": 24, "kv_heads": 6, "head_dim": 128, "ffn_hidden": 8192, "vocab": 32000})",
        "parallel.tp=4", "parallel.dp=2", "training.global_batch=8"},
       "parallel.tp = 4: must divide model.kv_heads (6) or be a multiple of it"},
      {{"parallel.pp=32", "parallel.virtual_stages=2", "parallel.pp_schedule=interleaved", "parallel.dp=1",
        "cluster.gpus=32", "cluster.gpus_per_node=8", "training.global_batch=64"},
       "parallel.pp = 32: pp*virtual_stages (64) must be <= model.layers (32)"},
      {{"training.global_batch=1001"}, "training.global_batch = 1001: must be divisible by dp*micro_batch = 8*1 = 8"},
      {{"parallel.ep=2"}, "parallel.ep = 2: requires a mixture-of-experts model"},
      {{"parallel.zero=4"}, "parallel.zero = 4: must be between 0 and 3"},
      {{"parallel.sequence_parallel=true"}, "parallel.sequence_parallel = true: requires tp > 1"},
      {{"parallel.virtual_stages=2"}, "parallel.virtual_stages = 2: must be 1 unless pp_schedule is interleaved or zbv"},
      {{"parallel.pp_schedule=zbv", "parallel.pp=2", "parallel.dp=4", "parallel.virtual_stages=3"},
       "parallel.virtual_stages = 3: must be 2 for zbv"},
      {{"parallel.pp_schedule=interleaved", "parallel.pp=4", "parallel.dp=2", "parallel.virtual_stages=2",
        "training.global_batch=12"},
       "the interleaved schedule needs a multiple of pp (4)"},
      {{"parallel.cp=3", "parallel.dp=1", "cluster.gpus=3", "training.global_batch=1"},
       "parallel.cp = 3: 2*cp must divide training.seq_len (8192)"},
      {{"training.offload=optimizer"}, "training.offload = optimizer: requires parallel.zero >= 1"},
      {{"training.offload=optimizer+params", "parallel.zero=2"}, "requires parallel.zero = 3"},
      {{"training.precision=fp32", "training.grad_dtype=bf16"}, "training.grad_dtype = bf16: must be fp32 when precision is fp32"},
      {{"cluster.gpu=v100-32gb"}, "training.precision = bf16: NVIDIA V100 SXM2 32GB has no bf16 support"},
      {{"parallel.layer_split=[10,10]"}, "must add up to model.layers (32)"},
      {{"training.lora={\"rank\": 0}"}, "training.lora.rank = 0: must be >= 1"},
      {{"training.lora={\"targets\": [\"q_prj\"]}"}, "did you mean \"q_proj\""},
      {{"training.micro_batch=0"}, "training.micro_batch = 0: must be >= 1"},
      {{"parallel.tp=\"two\""}, "parallel.tp = \"two\": must be an integer"},
      {{"cluster.gpu=h100"}, "cluster.gpu = \"h100\": is not a preset"},
  };
  for (const Case& c : cases) {
    json doc = example();
    for (const auto& s : c.sets) apply_override(doc, s);
    const auto e = errors_of(doc);
    ASSERT_FALSE(e.empty()) << "accepted: " << c.expected;
    EXPECT_TRUE(mentions(e, c.expected)) << "expected: " << c.expected << "\n got: " << e[0];
  }
}

TEST(PlanFormat, MoeAndMlaRules) {
  json doc = example();
  doc["model"] = "mixtral-8x7b";
  doc["parallel"]["ep"] = 3;
  EXPECT_TRUE(mentions(errors_of(doc), "parallel.ep = 3: must divide model.moe.experts (8)"));
  doc["parallel"]["ep"] = 8;
  doc["parallel"]["dp"] = 4;
  doc["parallel"]["tp"] = 2;
  doc["training"]["global_batch"] = 4;
  EXPECT_TRUE(mentions(errors_of(doc), "parallel.ep = 8: must divide dp*cp (4)"));
  doc = example();
  doc["model"] = "deepseek-v3";
  doc["training"]["lora"] = {{"targets", {"q_proj"}}};
  EXPECT_TRUE(mentions(errors_of(doc), "training.lora.targets = \"q_proj\": matches no module of model DeepSeek-V3"));
}

// Hugging Face config.json files, written by the test, resolve relative to the plan's directory.
TEST(PlanFormat, HuggingFaceConfigs) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "paraplan_hf_test";
  fs::create_directories(dir);
  auto load = [&](const json& cfg) {
    std::ofstream(dir / "config.json") << cfg.dump();
    json doc = example();
    doc["training"]["seq_len"] = 1024;  // within GPT-2's learned position table
    doc["model"] = {{"hf_config", "config.json"}};
    return plan_from_json(doc, dir.string());
  };
  // meta-llama/Meta-Llama-3-8B config.json (relevant fields)
  Plan p = load({{"model_type", "llama"}, {"hidden_size", 4096}, {"num_hidden_layers", 32},
                 {"num_attention_heads", 32}, {"num_key_value_heads", 8}, {"intermediate_size", 14336},
                 {"vocab_size", 128256}, {"hidden_act", "silu"}, {"tie_word_embeddings", false}});
  EXPECT_EQ(count_params(p.model).total, 8'030'261'248);
  // Qwen/Qwen2-0.5B: q/k/v biases, tied embeddings: 494,032,768 parameters.
  p = load({{"model_type", "qwen2"}, {"hidden_size", 896}, {"num_hidden_layers", 24}, {"num_attention_heads", 14},
            {"num_key_value_heads", 2}, {"intermediate_size", 4864}, {"vocab_size", 151936},
            {"hidden_act", "silu"}, {"tie_word_embeddings", true}});
  EXPECT_EQ(count_params(p.model).total, 494'032'768);
  // openai-community/gpt2: 124,439,808 parameters.
  p = load({{"model_type", "gpt2"}, {"n_embd", 768}, {"n_layer", 12}, {"n_head", 12}, {"vocab_size", 50257},
            {"n_positions", 1024}, {"n_inner", nullptr}});
  EXPECT_EQ(count_params(p.model).total, 124'439'808);
  // mistralai/Mixtral-8x7B-v0.1
  p = load({{"model_type", "mixtral"}, {"hidden_size", 4096}, {"num_hidden_layers", 32}, {"num_attention_heads", 32},
            {"num_key_value_heads", 8}, {"intermediate_size", 14336}, {"vocab_size", 32000},
            {"num_local_experts", 8}, {"num_experts_per_tok", 2}});
  EXPECT_EQ(count_params(p.model).total, 46'702'792'704);
  // deepseek-ai/DeepSeek-V3
  p = load({{"model_type", "deepseek_v3"}, {"hidden_size", 7168}, {"num_hidden_layers", 61},
            {"num_attention_heads", 128}, {"num_key_value_heads", 128}, {"intermediate_size", 18432},
            {"moe_intermediate_size", 2048}, {"vocab_size", 129280}, {"n_routed_experts", 256},
            {"n_shared_experts", 1}, {"num_experts_per_tok", 8}, {"first_k_dense_replace", 3},
            {"q_lora_rank", 1536}, {"kv_lora_rank", 512}, {"qk_nope_head_dim", 128}, {"qk_rope_head_dim", 64},
            {"v_head_dim", 128}, {"hidden_act", "silu"}});
  EXPECT_EQ(count_params(p.model).total, count_params(model_preset("deepseek-v3")).total);
  // unsupported family and missing fields
  EXPECT_TRUE(mentions(errors_of([&] {
                         std::ofstream(dir / "config.json") << R"({"model_type": "t5"})";
                         json d = example();
                         d["model"] = {{"hf_config", (dir / "config.json").string()}};
                         return d;
                       }()),
                       "model_type = \"t5\": is not supported; supported: llama, granite, mistral, qwen2, qwen3, "
                       "qwen3_moe, mixtral, gpt2, gpt_neox, starcoder2, deepseek_v2, deepseek_v3; another family "
                       "can be written inline"));
  fs::remove_all(dir);
}

// mesh_order: "ep" may name where expert groups fold (after the inner of cp and dp), and nowhere else.
TEST(PlanFormat, MeshOrderWithExpertAxis) {
  json doc = example();
  doc["cluster"]["mesh_order"] = {"tp", "cp", "ep", "dp", "pp"};  // Megatron-Core's default order
  const Plan p = plan_from_json(doc);
  EXPECT_EQ(p.cluster.mesh_order, (std::vector<Axis>{Axis::tp, Axis::cp, Axis::dp, Axis::pp}));
  doc["cluster"]["mesh_order"] = {"tp", "dp", "ep", "cp", "pp"};  // dp inner: ep follows dp
  EXPECT_EQ(plan_from_json(doc).cluster.mesh_order,
            (std::vector<Axis>{Axis::tp, Axis::dp, Axis::cp, Axis::pp}));
  doc["cluster"]["mesh_order"] = {"ep", "tp", "cp", "dp", "pp"};
  auto errs = errors_of(doc);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(errs[0].find("\"ep\" must follow the inner of cp and dp"), std::string::npos) << errs[0];
  doc["cluster"]["mesh_order"] = {"tp", "cp", "dp"};
  errs = errors_of(doc);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(errs[0].find("must list tp, cp, dp and pp once each"), std::string::npos) << errs[0];
}

// Defaults live in one place, the structs' initialisers (issue 11): a section left empty in JSON reads as
// the default-constructed struct, except the defaults that depend on another field or a preset (listed
// above plan_from_json), which are checked one by one here.
TEST(PlanFormat, EmptySectionsReadAsTheDefaultStructs) {
  const Plan p = plan_from_json(json::parse(R"({"model": "tiny-llama", "training": {}, "parallel": {}, "cluster": {}})"));
  TrainingSpec training;
  training.global_batch = 1;  // dp x micro_batch = 1 x 1
  EXPECT_TRUE(p.training == training);
  EXPECT_EQ(p.training.recompute, Recompute::none);  // the header said selective while the reader said none
  EXPECT_TRUE(p.parallel == ParallelPlan{});
  ClusterSpec cluster;
  cluster.gpu = hardware_preset("h100-sxm-80gb");         // the default GPU
  cluster.calibration = builtin_calibration("published");  // on GPUs
  EXPECT_TRUE(p.cluster == cluster);
  // A LoRA object with no fields is the default LoraSpec (alpha = 2 x rank = 16).
  const Plan l = plan_from_json(json::parse(R"({"model": "tiny-llama", "training": {"lora": {}}})"));
  ASSERT_TRUE(l.training.lora);
  EXPECT_TRUE(*l.training.lora == LoraSpec{});
  // An inline model with only the required fields is the default ModelSpec with those fields, kv_heads =
  // heads and head_dim = hidden / heads.
  const Plan m = plan_from_json(json::parse(R"({"model": {"layers": 2, "hidden": 64, "heads": 4, "ffn_hidden": 128,
      "vocab": 256}})"));
  ModelSpec model;
  model.name = "custom";
  model.layers = 2;
  model.hidden = 64;
  model.heads = 4;
  model.kv_heads = 4;
  model.head_dim = 16;
  model.ffn_hidden = 128;
  model.vocab = 256;
  EXPECT_TRUE(m.model == model);
  // And a plan built in code round-trips: what paraplan writes, it reads back equal.
  EXPECT_TRUE(plan_from_json(plan_to_json(p)) == p);
  EXPECT_TRUE(plan_from_json(plan_to_json(l)) == l);
}

// training.cross_entropy round-trips (written only when not the default) and names Megatron-Core as the
// only framework that has Transformer Engine's fused loss; model.qk_norm round-trips in an inline model
// and cannot join multi-head latent attention, which norms its compressed query and key/value instead.
TEST(PlanFormat, CrossEntropyAndQkNorm) {
  json doc = example();
  EXPECT_FALSE(plan_to_json(plan_from_json(doc))["training"].contains("cross_entropy"));
  doc["training"]["cross_entropy"] = "te";
  const Plan te = plan_from_json(doc);
  EXPECT_EQ(te.training.cross_entropy, CrossEntropy::te);
  EXPECT_EQ(plan_to_json(te)["training"]["cross_entropy"], "te");
  doc["training"]["framework"] = "deepspeed";
  EXPECT_TRUE(mentions(errors_of(doc), "training.cross_entropy = te: requires training.framework megatron"));
  doc["training"]["framework"] = "megatron";
  doc["training"]["cross_entropy"] = "fused";
  EXPECT_TRUE(mentions(errors_of(doc), "training.cross_entropy"));

  json inline_doc = example();
  json m = model_to_json(model_preset("llama3-8b"));
  m["qk_norm"] = true;
  inline_doc["model"] = m;
  const Plan q = plan_from_json(inline_doc);
  EXPECT_TRUE(q.model.qk_norm);
  EXPECT_TRUE(plan_to_json(q)["model"]["qk_norm"].get<bool>());
  json mla = model_to_json(model_preset("deepseek-v3"));
  mla["qk_norm"] = true;
  json mla_doc = example();
  mla_doc["model"] = mla;
  EXPECT_TRUE(mentions(errors_of(mla_doc), "model.qk_norm = true: must be false with multi-head latent attention"));
}

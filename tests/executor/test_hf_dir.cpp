// Hugging Face directories: shard planning as transformers names the files, the index, and errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "paraplan/exec/hf_dir.hpp"
#include "paraplan/plan_io.hpp"
#include "format_error.hpp"
#include "../test_dirs.hpp"

using namespace paraplan::exec;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) { return paraplan::testing::fresh_dir("paraplan-hf", name); }

std::string error_of(const std::string& dir) { return paraplan::exec::testing::format_error_of<HfWeights>(dir); }

}  // namespace

TEST(HfDir, ShardsAreFilledInOrderUpToTheLimit) {
  // 10 + 10 fit in 25 bytes, the third tensor opens a second shard; a 30-byte tensor gets its own.
  const ShardPlan p = plan_shards({10, 10, 10, 30, 1}, 25);
  EXPECT_EQ(p.shard_of, (std::vector<int>{0, 0, 1, 2, 3}));
  EXPECT_EQ(p.files, (std::vector<std::string>{"model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
                                               "model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors"}));
  EXPECT_TRUE(p.indexed);
  const ShardPlan one = plan_shards({10, 10}, 100);
  EXPECT_EQ(one.files, (std::vector<std::string>{"model.safetensors"}));
  EXPECT_FALSE(one.indexed);
  const nlohmann::json idx = shard_index(p, {"a", "b", "c", "d", "e"}, 61);
  EXPECT_EQ(idx["metadata"]["total_size"], 61);
  EXPECT_EQ(idx["weight_map"]["c"], "model-00002-of-00004.safetensors");
}

TEST(HfDir, ReadsAShardedDirectoryThroughItsIndex) {
  const fs::path d = fresh_dir("sharded");
  const float a = 1, b = 2;
  write_safetensors((d / "model-00001-of-00002.safetensors").string(), {{"a", Dtype::f32, {1}, &a}});
  write_safetensors((d / "model-00002-of-00002.safetensors").string(), {{"b", Dtype::f32, {1}, &b}});
  std::ofstream(d / "model.safetensors.index.json")
      << R"({"metadata":{"total_size":8},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}})";
  HfWeights w(d.string());
  const SafetensorsFile* f = nullptr;
  ASSERT_TRUE(w.find("b", &f));
  EXPECT_NE(f->path().find("model-00002-of-00002"), std::string::npos);
  EXPECT_EQ(w.names(), (std::vector<std::string>{"a", "b"}));
}

TEST(HfDir, ErrorsNameTheDirectoryIndexAndShard) {
  const fs::path empty = fresh_dir("empty");
  EXPECT_NE(error_of(empty.string()).find("no weights (model.safetensors"), std::string::npos);
  const fs::path d = fresh_dir("missing-shard");
  std::ofstream(d / "model.safetensors.index.json") << R"({"weight_map":{"a":"model-00001-of-00002.safetensors"}})";
  EXPECT_NE(error_of(d.string()).find("model.safetensors.index.json: weight_map.a names model-00001-of-00002.safetensors, "
                                      "which does not exist"),
            std::string::npos)
      << error_of(d.string());
}

TEST(HfDir, WrittenConfigReadsBackAsTheSameModel) {
  paraplan::planner::Violations errors;
  const paraplan::planner::ModelSpec m =
      paraplan::planner::model_from_json(nlohmann::json("tiny-llama"), "model", ".", errors);
  ModelExtras x;
  x.norm_eps = 1e-6;
  x.rope_theta = 500000;
  const nlohmann::json c = hf_config_for(m, x, "float32");
  const paraplan::planner::ModelSpec back = paraplan::planner::model_from_hf_config(c, "config.json", errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(back.layers, m.layers);
  EXPECT_EQ(back.hidden, m.hidden);
  EXPECT_EQ(back.heads, m.heads);
  EXPECT_EQ(back.kv_heads, m.kv_heads);
  EXPECT_EQ(back.head_dim, m.head_dim);
  EXPECT_EQ(back.ffn_hidden, m.ffn_hidden);
  EXPECT_EQ(back.vocab, m.vocab);
  const ModelExtras xb = extras_from_hf_config(c);
  EXPECT_EQ(xb.norm_eps, 1e-6);
  EXPECT_EQ(xb.rope_theta, 500000);
}

// LLaMA's attention_bias (q, k, v, o) and mlp_bias (gate, up, down) written and read back: the same biases.
TEST(HfDir, WrittenBiasesReadBack) {
  using paraplan::planner::Bias;
  for (Bias b : {Bias::none, Bias::attention, Bias::mlp, Bias::all}) {
    paraplan::planner::Violations errors;
    paraplan::planner::ModelSpec m =
        paraplan::planner::model_from_json(nlohmann::json("tiny-llama"), "model", ".", errors);
    m.bias = b;
    const nlohmann::json c = hf_config_for(m, ModelExtras{}, "float32");
    EXPECT_EQ(paraplan::planner::model_from_hf_config(c, "config.json", errors).bias, b) << c.dump();
    EXPECT_TRUE(errors.empty());
  }
}

// The planner reads Granite, GPT-NeoX and StarCoder2 configs; the trainer runs none of them as
// transformers does. Granite's tensors even carry LLaMA's names: without the check its weights would load
// and train a function without its multipliers. A LLaMA directory, or one without config.json, passes.
TEST(HfDir, FamiliesTheTrainerDoesNotRunAreRefusedBeforeTheirWeights) {
  auto error = [](const fs::path& d) {
    try {
      check_trainer_runs_family(d.string());
    } catch (const FormatError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const fs::path d = fresh_dir("families");
  EXPECT_EQ(error(d), "");  // no config.json
  for (const char* type : {"llama", "qwen2", "gpt2"}) {
    std::ofstream(d / "config.json") << nlohmann::json{{"model_type", type}}.dump();
    EXPECT_EQ(error(d), "") << type;
  }
  std::ofstream(d / "config.json") << R"({"model_type": "granite", "residual_multiplier": 0.22})";
  EXPECT_NE(error(d).find((d / "config.json").string() + ": model_type = \"granite\": its weights cannot be loaded: "
                          "Granite's block is LLaMA's with four scalar multipliers"),
            std::string::npos)
      << error(d);
  for (const char* type : {"gpt_neox", "starcoder2"}) {
    std::ofstream(d / "config.json") << nlohmann::json{{"model_type", type}}.dump();
    EXPECT_NE(error(d).find(std::string("model_type = \"") + type + "\": its weights cannot be loaded"),
              std::string::npos)
        << type;
  }
  std::ofstream(d / "config.json") << "{not json";
  EXPECT_NE(error(d).find("config.json: not valid JSON"), std::string::npos);
  // The plan's own config (model.hf_config), for a directory that has none.
  const fs::path plan_config = d / "granite.json";
  std::ofstream(plan_config) << R"({"model_type": "granite"})";
  try {
    check_trainer_runs_config(plan_config.string());
    ADD_FAILURE() << "a Granite config passed";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(plan_config.string() + ": model_type = \"granite\""), std::string::npos)
        << e.what();
  }
}

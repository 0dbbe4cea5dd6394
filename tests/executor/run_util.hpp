#pragma once
// What the end-to-end tests of `paraplan run` share: a fresh directory per test, plan files for the
// tiny models on CPU workers, the paraplan command line, and failed runs in the store.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "paraplan/store.hpp"

namespace paraplan::test {

namespace fs = std::filesystem;

inline const char* kLora = R"({"rank": 4, "alpha": 8, "base": "fp32", "targets": ["q_proj", "v_proj", "down_proj"]})";

// A GPT-shaped model: LayerNorm, GeLU, biases everywhere, learned positions, tied embeddings, and a
// vocabulary of 257 (the byte tokenizer's end-of-document id).
inline const char* kTinyGpt = R"({"name": "tiny-gpt", "layers": 2, "hidden": 64, "heads": 4, "kv_heads": 4,
  "head_dim": 16, "ffn_hidden": 256, "vocab": 257, "activation": "gelu", "norm": "layernorm",
  "tied_embeddings": true, "bias": "all", "position_embedding": "learned", "max_seq_len": 128})";

// An empty directory named after the running test, under the temporary directory.
inline fs::path test_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string(info->test_suite_name()) + "-" + info->name();
  for (char& c : name)
    if (c == '/') c = '-';
  const fs::path d = fs::temp_directory_path() / ("paraplan-runs-" + std::to_string(getpid())) / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// tiny-llama (or the GPT-shaped model) on CPU workers, micro-batch 2.
inline std::string write_plan(const fs::path& dir, const std::string& name, int dp, int zero, bool lora, int global,
                              int seq = 32, bool flash = true, bool gpt = false) {
  const nlohmann::json doc = {
      {"model", gpt ? nlohmann::json::parse(kTinyGpt) : nlohmann::json("tiny-llama")},
      {"training", {{"seq_len", seq}, {"micro_batch", 2}, {"global_batch", global}, {"precision", "fp32"},
                    {"recompute", "none"}, {"flash_attention", flash},
                    {"lora", lora ? nlohmann::json::parse(kLora) : nlohmann::json()}}},
      {"parallel", {{"dp", dp}, {"zero", zero}}},
      {"cluster", {{"gpu", "cpu"}, {"gpus", dp}}}};
  const fs::path p = dir / (name + ".json");
  std::ofstream(p) << doc.dump(2);
  return p.string();
}

inline std::string cli(const std::string& args) { return std::string(PARAPLAN_BIN) + " " + args; }

// The store's last run failed, and its error holds `error_part`.
inline void expect_failed_run(const std::string& db, const std::string& error_part) {
  planner::Store store(db);
  ASSERT_FALSE(store.runs().empty());
  const planner::RunRecord r = store.runs().back();
  EXPECT_EQ(r.status, planner::RunStatus::failed);
  EXPECT_NE(r.error.find(error_part), std::string::npos) << r.error;
}

}  // namespace paraplan::test

// The chapter's Hugging Face recipe as a shipped plan (data/examples/hf-recipe-llama3-8b.json): planned,
// exported for accelerate and torchrun, and run end to end on a small LLaMA-shaped model with the same
// LoRA settings — the adapter saved in peft's layout, merged, and the merged weights checked.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../cli/run_paraplan.hpp"
#include "paraplan/exec/safetensors.hpp"

namespace fs = std::filesystem;
using paraplan::exec::SafetensorsFile;

namespace {

const std::string kRecipe = std::string(PARAPLAN_SOURCE_DIR) + "/data/examples/hf-recipe-llama3-8b.json";

std::vector<float> tensor(const SafetensorsFile& f, const std::string& name) {
  const auto& e = f.at(name);
  std::vector<float> v(static_cast<size_t>(e.numel()));
  f.read(e, v.data());
  return v;
}

}  // namespace

TEST(Recipe, PlansAsPeftPrintsIt) {
  const auto r = clitest::run("plan " + kRecipe + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  // peft's print_trainable_parameters for this LoraConfig on Meta-Llama-3-8B:
  // "trainable params: 3,407,872 || all params: 8,033,669,120 || trainable%: 0.0424".
  EXPECT_EQ(j["model"]["trainable_params"], 3407872);
  EXPECT_EQ(j["model"]["all_params"], 8033669120LL);
  EXPECT_EQ(j["memory"]["fits"], true) << "LoRA with gradient checkpointing fits one 80 GB GPU";
}

TEST(Recipe, ExportsForAccelerateAndTorchrun) {
  auto r = clitest::run("export --format accelerate " + kRecipe);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("mixed_precision: bf16"), std::string::npos) << r.out;          // bf16=True
  EXPECT_NE(r.out.find("fsdp_activation_checkpointing: true"), std::string::npos);     // gradient_checkpointing=True
  EXPECT_NE(r.out.find("LoraConfig(r=8, lora_alpha=32"), std::string::npos) << r.out;
  r = clitest::run("export --format torchrun " + kRecipe);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("torchrun"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("paraplan run"), std::string::npos) << r.out;
}

// The same LoRA settings (r = 8, alpha = 32, q_proj and v_proj, micro-batch 1, gradient accumulation 8)
// on tiny-llama with CPU workers. What differs, and why: fp32 instead of bf16 (the executor trains in
// bf16 on GPUs only), no gradient checkpointing (the executor does not recompute; docs/teaching.md).
TEST(Recipe, RunsEndToEndOnASmallLlamaAndMerges) {
  const fs::path d = fs::temp_directory_path() / ("paraplan-recipe-" + std::to_string(getpid()));
  fs::remove_all(d);
  const std::string small = "--set model=tiny-llama --set cluster.gpu=cpu --set training.seq_len=32 "
                            "--set training.precision=fp32 --set training.lora.base=fp32 --set training.recompute=none";
  const auto r = clitest::run("run " + kRecipe + " " + small + " --steps 3 --lr 0.01 --db '' --save " +
                              (d / "base").string() + " --save-adapter " + (d / "adapter").string() +
                              " --save-merged " + (d / "merged").string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("global batch 8"), std::string::npos) << r.out;  // 8 micro-batches of 1
  // peft's layout: adapter_config.json with the recipe's LoraConfig, adapter_model.safetensors.
  std::ifstream cfg(d / "adapter" / "adapter_config.json");
  const auto c = nlohmann::json::parse(cfg);
  EXPECT_EQ(c["r"], 8);
  EXPECT_EQ(c["lora_alpha"], 32.0);
  EXPECT_EQ(c["target_modules"], nlohmann::json({"q_proj", "v_proj"}));
  const SafetensorsFile adapter((d / "adapter" / "adapter_model.safetensors").string());
  const SafetensorsFile base((d / "base" / "model.safetensors").string());
  const SafetensorsFile merged((d / "merged" / "model.safetensors").string());
  // merge_and_unload: W = W0 + (alpha / r) B A = W0 + 4 B A for q and v; every other weight unchanged.
  for (int layer = 0; layer < 2; ++layer)
    for (const std::string proj : {"q_proj", "v_proj", "k_proj"}) {
      const std::string w = "model.layers." + std::to_string(layer) + ".self_attn." + proj + ".weight";
      const auto w0 = tensor(base, w), wm = tensor(merged, w);
      const auto shape = base.at(w).shape;  // [out, in]
      const int64_t out = shape[0], in = shape[1];
      std::vector<double> expect(w0.begin(), w0.end());
      if (proj != "k_proj") {
        const std::string p = "base_model.model." + w.substr(0, w.size() - 7);
        const auto a = tensor(adapter, p + ".lora_A.weight"), b = tensor(adapter, p + ".lora_B.weight");  // [8, in], [out, 8]
        double norm = 0;
        for (int64_t i = 0; i < out; ++i)
          for (int64_t j = 0; j < in; ++j) {
            double s = 0;
            for (int k = 0; k < 8; ++k) s += double(b[i * 8 + k]) * a[k * in + j];
            expect[i * in + j] += 4 * s;
            norm += std::fabs(4 * s);
          }
        EXPECT_GT(norm, 0) << p << ": the adapter trained (B starts at zero)";
      }
      for (size_t i = 0; i < wm.size(); ++i) ASSERT_NEAR(wm[i], expect[i], 1e-5) << w << " element " << i;
    }
}

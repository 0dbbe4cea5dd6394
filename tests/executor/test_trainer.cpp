// The trainer in one process (a world of one): Hugging Face checkpoints and LoRA adapters written,
// read back and compared through the model's own outputs.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "paraplan/exec/hf_dir.hpp"
#include "paraplan/exec/safetensors.hpp"
#include "paraplan/exec/trainer.hpp"
#include "paraplan/params.hpp"
#include "paraplan/plan_io.hpp"

using namespace paraplan::exec;
using namespace paraplan::planner;
namespace fs = std::filesystem;

namespace {

const char* kLora = R"({"rank": 4, "alpha": 8, "base": "fp32", "targets": ["q_proj", "v_proj", "o_proj", "down_proj"]})";

Plan tiny(const std::string& lora = "null") {
  const nlohmann::json doc = {
      {"model", "tiny-llama"},
      {"training", {{"seq_len", 16}, {"micro_batch", 2}, {"precision", "fp32"}, {"recompute", "none"},
                    {"lora", nlohmann::json::parse(lora)}}},
      {"parallel", {{"dp", 1}}},
      {"cluster", {{"gpu", "cpu"}, {"gpus", 1}}}};
  return plan_from_json(doc);
}

fs::path fresh(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("paraplan-trainer-" + std::to_string(getpid())) / name;
  fs::remove_all(d);
  return d;
}

struct World {
  std::unique_ptr<ProcessGroups> groups = make_fake_groups(0, paraplan::planner::RankGrid());
};

TrainOptions options(const Plan& p) {
  TrainOptions o;
  o.plan = p;
  o.lr = 1e-2;  // large enough that three steps move every adapter well away from B = 0
  o.seed = 11;
  return o;
}

const std::vector<int64_t> kIds = [] {
  std::vector<int64_t> v;
  for (int i = 0; i < 32; ++i) v.push_back((i * 37 + 5) % 256);
  return v;
}();

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(static_cast<double>(a[i]) - b[i]));
  return m;
}

double max_abs(const std::vector<float>& a) {
  double m = 0;
  for (float x : a) m = std::max(m, std::abs(static_cast<double>(x)));
  return m;
}

}  // namespace

TEST(Trainer, LoraAdapterSavesAndReloadsToTheSameOutputs) {
  World w;
  const Plan plan = tiny(kLora);
  Trainer t(options(plan), *w.groups);
  const std::vector<float> before = t.logits(kIds, 2, 16);
  for (int i = 0; i < 3; ++i) t.step();
  const std::vector<float> trained = t.logits(kIds, 2, 16);
  ASSERT_GT(max_abs_diff(before, trained), 1e-3) << "training did not change the adapter's output";
  const fs::path dir = fresh("adapter");
  t.save_adapter(dir.string());

  // peft layout: only adapter tensors, peft names, as many parameters as the planner counts.
  SafetensorsFile f((dir / "adapter_model.safetensors").string());
  int64_t params = 0;
  for (const auto& e : f.tensors()) {
    EXPECT_EQ(e.name.rfind("base_model.model.model.layers.", 0), 0u) << e.name;
    params += e.numel();
  }
  EXPECT_EQ(params, model_params(plan.model, plan.training.lora).trainable_total);
  EXPECT_EQ(params, t.trainable_params());
  EXPECT_TRUE(f.find("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"));
  std::ifstream cfg(dir / "adapter_config.json");
  const nlohmann::json c = nlohmann::json::parse(cfg);
  EXPECT_EQ(c["peft_type"], "LORA");
  EXPECT_EQ(c["r"], 4);
  EXPECT_EQ(c["lora_alpha"], 8.0);
  EXPECT_EQ(c["target_modules"], nlohmann::json({"q_proj", "v_proj", "o_proj", "down_proj"}));

  // A fresh model (same base: same seed) with the adapter loaded gives the trained outputs.
  TrainOptions again = options(plan);
  again.adapter_dir = dir.string();
  Trainer t2(again, *w.groups);
  EXPECT_LE(max_abs_diff(t2.logits(kIds, 2, 16), trained), 1e-6 * max_abs(trained));
}

TEST(Trainer, MergedModelEqualsBasePlusAdapter) {
  World w;
  const Plan plan = tiny(kLora);
  Trainer t(options(plan), *w.groups);
  for (int i = 0; i < 3; ++i) t.step();
  const std::vector<float> with_adapter = t.logits(kIds, 2, 16);
  const fs::path dir = fresh("merged");
  t.save_merged(dir.string());
  // The merged directory is a plain model: no adapter tensors, the base names, a config.json.
  HfWeights weights(dir.string());
  for (const std::string& n : weights.names()) EXPECT_EQ(n.find("lora"), std::string::npos) << n;
  TrainOptions plain = options(tiny());
  plain.load_dir = dir.string();
  Trainer merged(plain, *w.groups);
  const std::vector<float> out = merged.logits(kIds, 2, 16);
  EXPECT_LE(max_abs_diff(out, with_adapter), 1e-5 * max_abs(with_adapter));
}

TEST(Trainer, ShardedCheckpointRoundTrips) {
  World w;
  Trainer t(options(tiny()), *w.groups);
  for (int i = 0; i < 2; ++i) t.step();
  const std::vector<float> trained = t.logits(kIds, 2, 16);
  const fs::path dir = fresh("sharded");
  t.save(dir.string(), /*max_shard_bytes=*/200'000);  // 476 kB of weights: three shards
  EXPECT_TRUE(fs::exists(dir / "model.safetensors.index.json"));
  EXPECT_TRUE(fs::exists(dir / "model-00001-of-00003.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "model-00003-of-00003.safetensors"));
  // config.json describes the same model to the planner.
  std::ifstream in(dir / "config.json");
  Violations errors;
  const ModelSpec m = model_from_hf_config(nlohmann::json::parse(in), "config.json", errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(count_params(m).total, count_params(tiny().model).total);
  TrainOptions o = options(tiny());
  o.load_dir = dir.string();
  o.seed = 99;  // a different initialisation: everything must come from the checkpoint
  Trainer loaded(o, *w.groups);
  EXPECT_EQ(max_abs_diff(loaded.logits(kIds, 2, 16), trained), 0.0);
}

TEST(Trainer, CheckpointsOfAnotherModelAreRefusedNamingTheTensor) {
  World w;
  Trainer t(options(tiny()), *w.groups);
  const fs::path dir = fresh("incomplete");
  t.save(dir.string());
  // Drop one tensor: the reader names it and the directory.
  const fs::path file = dir / "model.safetensors";
  std::vector<std::string> names;
  std::vector<std::vector<char>> data;
  std::vector<TensorView> views;
  {
    SafetensorsFile f(file.string());
    for (const auto& e : f.tensors()) {
      if (e.name == "model.norm.weight") continue;
      names.push_back(e.name);
      data.emplace_back(e.nbytes());
      f.read(e, data.back().data());
    }
    size_t i = 0;
    for (const auto& e : f.tensors())
      if (e.name != "model.norm.weight") {
        views.push_back({e.name, e.dtype, e.shape, data[i].data()});
        ++i;
      }
  }
  write_safetensors(file.string(), views);
  TrainOptions o = options(tiny());
  o.load_dir = dir.string();
  try {
    Trainer bad(o, *w.groups);
    FAIL() << "loaded a checkpoint without model.norm.weight";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(dir.string() + ": no tensor model.norm.weight in the checkpoint"),
              std::string::npos)
        << e.what();
  }
  // A checkpoint with more layers than the model: the extra tensors are named.
  const float one = 1.0f;
  views.push_back({"model.layers.2.input_layernorm.weight", Dtype::f32, {1}, &one});
  write_safetensors(file.string(), views);
  try {
    Trainer bad(o, *w.groups);
    FAIL() << "loaded a checkpoint with a third layer into a 2-layer model";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("tensor model.layers.2.input_layernorm.weight is not part of the model"),
              std::string::npos)
        << e.what();
  }
}

namespace {

std::map<std::string, at::Tensor> load_all(const fs::path& file) {
  std::map<std::string, at::Tensor> out;
  SafetensorsFile f(file.string());
  for (const auto& e : f.tensors()) {
    at::Tensor t = at::empty(e.shape, at::kFloat);
    f.read(e, t.data_ptr());
    out[e.name] = t;
  }
  return out;
}

}  // namespace

TEST(Trainer, GptShapedModelsUseGpt2sLayout) {
  // A GPT-2-shaped model saves as GPT2LMHeadModel does; the test recomputes its logits from the saved
  // tensors with GPT-2's own arithmetic (Radford et al. 2019; transformers modeling_gpt2.py: Conv1D is
  // x W + b with W [in, out], c_attn holds q | k | v, gelu_new, tied head).
  World w;
  const nlohmann::json doc = {
      {"model", {{"name", "tiny-gpt2"}, {"layers", 2}, {"hidden", 32}, {"heads", 4}, {"ffn_hidden", 128}, {"vocab", 256},
                 {"activation", "gelu"}, {"norm", "layernorm"}, {"bias", "all"}, {"position_embedding", "learned"},
                 {"max_seq_len", 64}, {"tied_embeddings", true}}},
      {"training", {{"seq_len", 16}, {"micro_batch", 2}, {"precision", "fp32"}, {"recompute", "none"}}},
      {"parallel", {{"dp", 1}}},
      {"cluster", {{"gpu", "cpu"}, {"gpus", 1}}}};
  TrainOptions o;
  o.plan = plan_from_json(doc);
  o.lr = 1e-2;
  Trainer t(o, *w.groups);
  for (int i = 0; i < 2; ++i) t.step();
  const std::vector<float> trained = t.logits(kIds, 2, 16);
  const fs::path dir = fresh("gpt2");
  t.save(dir.string());
  std::ifstream cfg(dir / "config.json");
  EXPECT_EQ(nlohmann::json::parse(cfg)["model_type"], "gpt2");
  auto W = load_all(dir / "model.safetensors");
  ASSERT_TRUE(W.count("h.1.attn.c_attn.weight"));
  EXPECT_EQ(W.at("h.1.attn.c_attn.weight").sizes(), (at::IntArrayRef{32, 96}));
  EXPECT_EQ(W.at("h.0.mlp.c_proj.weight").sizes(), (at::IntArrayRef{128, 32}));
  EXPECT_FALSE(W.count("lm_head.weight"));  // tied

  const at::Tensor ids = at::tensor(kIds, at::kLong).view({2, 16});
  at::Tensor x = W.at("wte.weight").index_select(0, ids.view(-1)).view({2, 16, 32}) + W.at("wpe.weight").narrow(0, 0, 16);
  const at::Tensor mask = at::ones({16, 16}, at::kBool).triu(1);
  for (int l = 0; l < 2; ++l) {
    const std::string h = "h." + std::to_string(l) + ".";
    const at::Tensor a = at::layer_norm(x, {32}, W.at(h + "ln_1.weight"), W.at(h + "ln_1.bias"), 1e-5);
    const at::Tensor qkv = at::matmul(a, W.at(h + "attn.c_attn.weight")) + W.at(h + "attn.c_attn.bias");
    auto heads = [](const at::Tensor& y) { return y.view({2, 16, 4, 8}).transpose(1, 2); };
    const at::Tensor q = heads(qkv.narrow(2, 0, 32)), k = heads(qkv.narrow(2, 32, 32)), v = heads(qkv.narrow(2, 64, 32));
    const at::Tensor att = at::matmul(q, k.transpose(-1, -2)).div(std::sqrt(8.0)).masked_fill(mask, -INFINITY).softmax(-1);
    const at::Tensor attn_out = at::matmul(att, v).transpose(1, 2).reshape({2, 16, 32});
    x = x + at::matmul(attn_out, W.at(h + "attn.c_proj.weight")) + W.at(h + "attn.c_proj.bias");
    const at::Tensor m = at::layer_norm(x, {32}, W.at(h + "ln_2.weight"), W.at(h + "ln_2.bias"), 1e-5);
    const at::Tensor f = at::gelu(at::matmul(m, W.at(h + "mlp.c_fc.weight")) + W.at(h + "mlp.c_fc.bias"), "tanh");
    x = x + at::matmul(f, W.at(h + "mlp.c_proj.weight")) + W.at(h + "mlp.c_proj.bias");
  }
  const at::Tensor logits =
      at::matmul(at::layer_norm(x, {32}, W.at("ln_f.weight"), W.at("ln_f.bias"), 1e-5), W.at("wte.weight").t());
  const std::vector<float> ref(logits.data_ptr<float>(), logits.data_ptr<float>() + logits.numel());
  EXPECT_LE(max_abs_diff(trained, ref), 1e-5 * max_abs(ref));

  // The directory reads back, through a plan that names its config.json.
  nlohmann::json from = doc;
  from["model"] = {{"hf_config", (dir / "config.json").string()}};
  TrainOptions o2;
  o2.plan = plan_from_json(from);
  o2.load_dir = dir.string();
  Trainer loaded(o2, *w.groups);
  EXPECT_EQ(max_abs_diff(loaded.logits(kIds, 2, 16), trained), 0.0);
}

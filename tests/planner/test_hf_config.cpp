// Hugging Face config.json: the rules an inline model obeys, named by the config's own keys; keys that
// change the model modelled (biases, sliding window) or refused (moe_layer_freq != 1, Qwen2's per-layer
// windows); JSON booleans only; LoRA targets that match no module. Parameter counts derived by hand,
// each with its formula; configs written from the published Hugging Face config.json values.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "paraplan/flops.hpp"
#include "paraplan/memory.hpp"
#include "paraplan/params.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/presets.hpp"
#include "plan_errors.hpp"

using namespace paraplan::planner;
using nlohmann::json;
using plantest::mentions;

namespace {

// meta-llama/Meta-Llama-3-8B config.json (the fields the planner reads).
json llama3_8b() {
  return {{"model_type", "llama"}, {"hidden_size", 4096}, {"num_hidden_layers", 32}, {"num_attention_heads", 32},
          {"num_key_value_heads", 8}, {"intermediate_size", 14336}, {"vocab_size", 128256}, {"hidden_act", "silu"},
          {"tie_word_embeddings", false}, {"attention_bias", false}, {"mlp_bias", false}};
}

// mistralai/Mistral-7B-v0.1 config.json.
json mistral_7b() {
  return {{"model_type", "mistral"}, {"hidden_size", 4096}, {"num_hidden_layers", 32}, {"num_attention_heads", 32},
          {"num_key_value_heads", 8}, {"intermediate_size", 14336}, {"vocab_size", 32000}, {"hidden_act", "silu"},
          {"max_position_embeddings", 32768}, {"sliding_window", 4096}, {"tie_word_embeddings", false}};
}

// deepseek-ai/DeepSeek-V2-Lite config.json: MLA without query compression (q_lora_rank null).
json deepseek_v2_lite() {
  return {{"model_type", "deepseek_v2"}, {"hidden_size", 2048}, {"num_hidden_layers", 27},
          {"num_attention_heads", 16}, {"num_key_value_heads", 16}, {"intermediate_size", 10944},
          {"moe_intermediate_size", 1408}, {"vocab_size", 102400}, {"n_routed_experts", 64},
          {"n_shared_experts", 2}, {"num_experts_per_tok", 6}, {"first_k_dense_replace", 1},
          {"moe_layer_freq", 1}, {"q_lora_rank", nullptr}, {"kv_lora_rank", 512}, {"qk_nope_head_dim", 128},
          {"qk_rope_head_dim", 64}, {"v_head_dim", 128}, {"hidden_act", "silu"}, {"attention_bias", false},
          {"tie_word_embeddings", false}};
}

// Qwen/Qwen3-8B config.json (dense; per-head q and k RMSNorm in modeling_qwen3.py).
json qwen3_8b() {
  return {{"model_type", "qwen3"}, {"hidden_size", 4096}, {"num_hidden_layers", 36}, {"num_attention_heads", 32},
          {"num_key_value_heads", 8}, {"head_dim", 128}, {"intermediate_size", 12288}, {"vocab_size", 151936},
          {"hidden_act", "silu"}, {"attention_bias", false}, {"tie_word_embeddings", false},
          {"use_sliding_window", false}, {"sliding_window", nullptr}};
}

// Qwen/Qwen3-30B-A3B config.json.
json qwen3_30b_a3b() {
  return {{"model_type", "qwen3_moe"}, {"hidden_size", 2048}, {"num_hidden_layers", 48}, {"num_attention_heads", 32},
          {"num_key_value_heads", 4}, {"head_dim", 128}, {"intermediate_size", 6144}, {"moe_intermediate_size", 768},
          {"num_experts", 128}, {"num_experts_per_tok", 8}, {"decoder_sparse_step", 1},
          {"mlp_only_layers", json::array()}, {"norm_topk_prob", true}, {"vocab_size", 151936}, {"hidden_act", "silu"},
          {"attention_bias", false}, {"tie_word_embeddings", false}, {"use_sliding_window", false}};
}

// EleutherAI/pythia-{70m,160m,1b} config.json (gpt_neox; Biderman et al. 2023, Table 1 for the sizes).
json pythia(int64_t hidden, int layers, int heads) {
  return {{"model_type", "gpt_neox"}, {"hidden_size", hidden}, {"num_hidden_layers", layers},
          {"num_attention_heads", heads}, {"intermediate_size", 4 * hidden}, {"vocab_size", 50304},
          {"hidden_act", "gelu"}, {"rotary_pct", 0.25}, {"use_parallel_residual", true},
          {"tie_word_embeddings", false}, {"max_position_embeddings", 2048}};
}

// ibm-granite/granite-3.1-2b-base config.json.
json granite_2b() {
  return {{"model_type", "granite"}, {"hidden_size", 2048}, {"num_hidden_layers", 40}, {"num_attention_heads", 32},
          {"num_key_value_heads", 8}, {"intermediate_size", 8192}, {"vocab_size", 49155}, {"hidden_act", "silu"},
          {"tie_word_embeddings", true}, {"attention_bias", false}, {"mlp_bias", false},
          {"embedding_multiplier", 12.0}, {"residual_multiplier", 0.22}, {"attention_multiplier", 0.015625},
          {"logits_scaling", 8.0}};
}

// bigcode/starcoder2-3b config.json (use_bias and tie_word_embeddings at Starcoder2Config's defaults, true).
json starcoder2_3b() {
  return {{"model_type", "starcoder2"}, {"hidden_size", 3072}, {"num_hidden_layers", 30}, {"num_attention_heads", 24},
          {"num_key_value_heads", 2}, {"intermediate_size", 12288}, {"vocab_size", 49152},
          {"hidden_act", "gelu_pytorch_tanh"}, {"sliding_window", 4096}, {"rope_theta", 999999.4420358813}};
}

ModelSpec read(const json& cfg, std::vector<std::string>* errors = nullptr) {
  Violations v;
  ModelSpec m = model_from_hf_config(cfg, "config.json", v);
  if (errors)
    for (const auto& x : v.list()) errors->push_back(x.to_string());
  else
    v.throw_if_any();
  return m;
}

std::vector<std::string> errors_of(const json& cfg) {
  std::vector<std::string> e;
  read(cfg, &e);
  return e;
}

json with(json cfg, const std::string& key, const json& value) {
  cfg[key] = value;
  return cfg;
}

Plan plan_of(const ModelSpec& m, int64_t seq, bool flash) {
  Plan p;
  p.model = m;
  p.training.seq_len = seq;
  p.training.micro_batch = 1;
  p.training.global_batch = 8;
  p.training.recompute = Recompute::none;
  p.training.flash_attention = flash;
  p.parallel.dp = 8;
  p.cluster.gpu = hardware_preset("h100-sxm-80gb");
  p.cluster.gpus = 8;
  return p;
}

}  // namespace

// The config's sizes obey the inline model's ranges, and the messages name the config.json key.
TEST(HfConfig, SizesOutOfRangeNameTheKey) {
  EXPECT_TRUE(mentions(errors_of(with(llama3_8b(), "hidden_size", -4096)), "config.json: hidden_size = -4096: must be >= 1"));
  EXPECT_TRUE(mentions(errors_of(with(llama3_8b(), "hidden_size", 0)), "config.json: hidden_size = 0: must be >= 1"));
  EXPECT_TRUE(mentions(errors_of(with(llama3_8b(), "num_hidden_layers", 1e12)),
                       "config.json: num_hidden_layers = 1000000000000.0: must be <= 1048576"));
  EXPECT_TRUE(mentions(errors_of(with(llama3_8b(), "intermediate_size", int64_t{1} << 40)),
                       "config.json: intermediate_size = 1099511627776: must be <= 16777216"));
  EXPECT_TRUE(mentions(errors_of(with(llama3_8b(), "vocab_size", "128256")),
                       "config.json: vocab_size = \"128256\": must be an integer"));
  EXPECT_TRUE(mentions(errors_of(with(llama3_8b(), "num_key_value_heads", 3)),
                       "config.json: num_key_value_heads = 3: must divide num_attention_heads (32)"));
  EXPECT_TRUE(mentions(errors_of(with(with(llama3_8b(), "num_key_value_heads", 64), "num_attention_heads", 32)),
                       "config.json: num_key_value_heads = 64: must be <= num_attention_heads (32)"));
  // GPT-2 spells its fields differently; the rule is the same.
  const json gpt2 = {{"model_type", "gpt2"}, {"n_embd", 768}, {"n_layer", -12}, {"n_head", 12}, {"vocab_size", 50257}};
  EXPECT_TRUE(mentions(errors_of(gpt2), "config.json: n_layer = -12: must be >= 1"));
  // Each dimension in range, the whole far past any model: 2^20 layers of hidden 2^24, MLP 2^24:
  // 2^20 * (4 h^2 + 3 h f) >= 7 * 2^68 ~ 2e21 parameters, over the 1e15 bound; counted without overflow.
  json huge = llama3_8b();
  huge["num_hidden_layers"] = 1 << 20;
  huge["hidden_size"] = 1 << 24;
  huge["intermediate_size"] = 1 << 24;
  huge["num_attention_heads"] = 1 << 10;
  huge["num_key_value_heads"] = 1 << 10;
  EXPECT_TRUE(mentions(errors_of(huge), "must have at most 1e+15 parameters")) << errors_of(huge)[0];
}

// With no head_dim in the config, transformers takes hidden_size // num_attention_heads: more heads than
// hidden units give 0, which is refused with the heads named (found by fuzz_hf_config: it had been read as
// head_dim 0, which the plan's inline model form refuses, so the two forms disagreed). 4096 // 4096 = 1
// is a model; 4096 // 8192 = 0 is not. A head_dim given in the file keeps its own range check.
TEST(HfConfig, MoreHeadsThanHiddenUnitsWithoutHeadDimIsRefused) {
  json wide = with(with(llama3_8b(), "num_attention_heads", 8192), "num_key_value_heads", 8192);
  wide.erase("head_dim");
  EXPECT_TRUE(mentions(errors_of(wide), "config.json: num_attention_heads = 8192: must be <= hidden_size (4096) "
                                        "when the config gives no head_dim: head_dim is then hidden_size // "
                                        "num_attention_heads = 0")) << errors_of(wide)[0];
  json one = with(with(llama3_8b(), "num_attention_heads", 4096), "num_key_value_heads", 4096);
  one.erase("head_dim");
  EXPECT_TRUE(errors_of(one).empty());
  EXPECT_TRUE(mentions(errors_of(with(wide, "head_dim", 0)), "config.json: head_dim = 0: must be >= 1"));
  EXPECT_TRUE(errors_of(with(wide, "head_dim", 128)).empty());
}

// The case end to end: a negative hidden_size is refused before any estimate.
TEST(HfConfig, NegativeHiddenSizeIsRefusedNotEstimated) {
  json doc = {{"model", {{"hf_config", "config.json"}}}};
  const auto dir = std::filesystem::temp_directory_path() / "paraplan_hf_negative";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "config.json") << with(llama3_8b(), "hidden_size", -4096).dump();
  try {
    plan_from_json(doc, dir.string());
    ADD_FAILURE() << "a negative hidden_size was accepted";
  } catch (const PlanError& e) {
    EXPECT_NE(std::string(e.what()).find("config.json: hidden_size = -4096: must be >= 1"), std::string::npos)
        << e.what();
  }
  std::filesystem::remove_all(dir);
}

// transformers takes Python truthiness; a string "true" or a 1 is not a JSON boolean and is refused,
// never read as untied.
TEST(HfConfig, TieWordEmbeddingsTakesOnlyBooleans) {
  EXPECT_TRUE(mentions(errors_of(with(llama3_8b(), "tie_word_embeddings", "true")),
                       "config.json: tie_word_embeddings = \"true\": must be true or false (a JSON boolean)"));
  EXPECT_TRUE(mentions(errors_of(with(llama3_8b(), "tie_word_embeddings", 1)),
                       "config.json: tie_word_embeddings = 1: must be true or false"));
  EXPECT_TRUE(mentions(errors_of(with(llama3_8b(), "attention_bias", "false")),
                       "config.json: attention_bias = \"false\": must be true or false"));
  // true ties: LLaMA-3-8B minus its output head, 128,256 x 4,096 = 525,336,576.
  EXPECT_EQ(count_params(read(with(llama3_8b(), "tie_word_embeddings", true))).total,
            8'030'261'248 - 525'336'576);
}

// transformers modeling_llama.py: attention_bias puts a bias on q, k, v and o_proj; mlp_bias on gate, up
// and down_proj. Per layer of LLaMA-3-8B: attention q 4096 + k 1024 + v 1024 + o 4096 = 10,240;
// MLP gate 14,336 + up 14,336 + down 4,096 = 32,768; times 32 layers, added to 8,030,261,248.
TEST(HfConfig, LlamaBiasesAreCounted) {
  const int64_t base = 8'030'261'248;
  EXPECT_EQ(count_params(read(llama3_8b())).total, base);
  const ModelSpec attn = read(with(llama3_8b(), "attention_bias", true));
  EXPECT_EQ(attn.bias, Bias::attention);
  EXPECT_EQ(count_params(attn).total, base + 32 * 10'240);
  const ModelSpec mlp = read(with(llama3_8b(), "mlp_bias", true));
  EXPECT_EQ(mlp.bias, Bias::mlp);
  EXPECT_EQ(count_params(mlp).total, base + 32 * 32'768);
  const ModelSpec both = read(with(with(llama3_8b(), "attention_bias", true), "mlp_bias", true));
  EXPECT_EQ(both.bias, Bias::all);
  EXPECT_EQ(count_params(both).total, base + 32 * (10'240 + 32'768));
  // The inline spelling reads back the same model.
  Violations v;
  const ModelSpec back = model_from_json(model_to_json(attn), "model", ".", v);
  v.throw_if_any();
  EXPECT_EQ(count_params(back).total, base + 32 * 10'240);
}

// Mistral-7B-v0.1: 7,241,732,096 parameters (embeddings 2 x 32,000 x 4,096, per layer 2 x 4096^2 +
// 2 x 4096 x 1024 + 3 x 4096 x 14,336 + 2 x 4096, final norm 4096); its window of 4,096 keys changes FLOPs.
TEST(HfConfig, MistralSlidingWindowCapsAttentionFlops) {
  const ModelSpec m = read(mistral_7b());
  EXPECT_EQ(count_params(m).total, 7'241'732'096);
  EXPECT_EQ(m.sliding_window, 4096);
  ModelSpec full = m;
  full.sliding_window = 0;
  // s = 8192, W = 4096: a causal query attends to sum_{i<=s} min(i, W) / s = W - W^2/(2s) = 3072 keys on
  // average (Jiang et al. 2023 §2) instead of s/2 = 4096: 1024 fewer. Per query-key pair the attention
  // core does 2d FLOPs for QK^T and 2d for AV (d = 32 heads x 128 = 4096), its backward twice that:
  // 12d. The full convention counts each causal pair twice (flops.hpp); the causal one once.
  const double s = 8192, d = 4096, layers = 32, sequences = 8, fewer_keys = 1024;
  const double per_pair = 12 * d;
  const StepFlops a = step_flops(plan_of(full, 8192, true)), b = step_flops(plan_of(m, 8192, true));
  EXPECT_NEAR(a.model - b.model, layers * sequences * s * fewer_keys * 2 * per_pair, 1e-9 * a.model);
  const StepFlops ac = step_flops(plan_of(full, 8192, true), AttentionFlops::causal);
  const StepFlops bc = step_flops(plan_of(m, 8192, true), AttentionFlops::causal);
  EXPECT_NEAR(ac.model - bc.model, layers * sequences * s * fewer_keys * per_pair, 1e-9 * ac.model);
  // A sequence no longer than the window attends to every earlier key: nothing changes.
  EXPECT_DOUBLE_EQ(step_flops(plan_of(full, 4096, true)).model, step_flops(plan_of(m, 4096, true)).model);
}

// Ring attention over a window is not modelled: cp > 1 with a window shorter than the sequence is refused.
TEST(HfConfig, SlidingWindowWithContextParallelismIsRefused) {
  Plan p = plan_of(read(mistral_7b()), 8192, true);
  p.parallel.dp = 4;
  p.parallel.cp = 2;
  Violations v;
  validate_plan(p, v);
  ASSERT_EQ(v.list().size(), 1u);
  EXPECT_EQ(v.list()[0].to_string(), "parallel.cp = 2: must be 1 with a sliding window shorter than training.seq_len "
                                     "(model.sliding_window = 4096): ring attention over a window is not modelled");
  p.training.seq_len = 4096;  // the window covers the sequence: ordinary ring attention
  Violations none;
  validate_plan(p, none);
  EXPECT_TRUE(none.empty());
}

// Without flash attention the eager path materialises the whole s x s score matrix and masks it
// (transformers eager_attention_forward; Megatron's unfused softmax has no window), so the window saves
// no score memory there; with flash attention nothing of size s x s is kept either way.
TEST(HfConfig, SlidingWindowKeepsTheUnfusedScoreMatrix) {
  const ModelSpec m = read(mistral_7b());
  ModelSpec full = m;
  full.sliding_window = 0;
  for (bool flash : {false, true})
    EXPECT_DOUBLE_EQ(estimate_memory(plan_of(m, 8192, flash)).peak_bytes,
                     estimate_memory(plan_of(full, 8192, flash)).peak_bytes)
        << flash;
}

// Qwen2 uses its window only with use_sliding_window, and then on layers >= max_window_layers: refused.
TEST(HfConfig, Qwen2PerLayerWindowsAreRefused) {
  // Qwen/Qwen2-0.5B: sliding_window 32768 with use_sliding_window false (no window): accepted.
  json qwen = {{"model_type", "qwen2"}, {"hidden_size", 896}, {"num_hidden_layers", 24}, {"num_attention_heads", 14},
               {"num_key_value_heads", 2}, {"intermediate_size", 4864}, {"vocab_size", 151936},
               {"hidden_act", "silu"}, {"tie_word_embeddings", true}, {"sliding_window", 32768},
               {"use_sliding_window", false}, {"max_window_layers", 24}};
  EXPECT_EQ(read(qwen).sliding_window, 0);
  EXPECT_EQ(count_params(read(qwen)).total, 494'032'768);
  EXPECT_TRUE(mentions(errors_of(with(qwen, "use_sliding_window", true)),
                       "config.json: use_sliding_window = true: must be false: per-layer sliding windows"));
}

// DeepSeek-V2-Lite, by hand (modeling_deepseek.py): embeddings and head 2 x 102,400 x 2,048; attention per
// layer q_proj 2048 x 16*192 + kv_a 2048 x (512+64) + kv_a norm 512 + kv_b 512 x 16*256 + o 16*128 x 2048
// = 13,763,072; norms 2 x 2048; layer 0 dense MLP 3 x 2048 x 10,944; layers 1..26 MoE: router 2048 x 64,
// 64 experts of 3 x 2048 x 1408, 2 shared experts as one MLP of 2 x 1408. Total 15,706,484,224 (the
// model card's 15.7B).
TEST(HfConfig, DeepSeekV2LiteHasAPlainQProj) {
  const ModelSpec m = read(deepseek_v2_lite());
  ASSERT_TRUE(m.mla);
  EXPECT_EQ(m.mla->q_lora_rank, 0);
  EXPECT_EQ(count_params(m).total, 15'706'484'224);
  // LoRA on its q_proj is accepted: rank 8 x (2048 + 3072) x 27 layers = 1,105,920 adapter parameters.
  Plan p = plan_of(m, 4096, true);
  p.training.lora = LoraSpec{};
  p.training.lora->targets = kQProj;
  Violations v;
  validate_plan(p, v);
  EXPECT_TRUE(v.empty()) << (v.empty() ? "" : v.list()[0].to_string());
  EXPECT_EQ(model_params(m, p.training.lora).trainable_total, 1'105'920);
}

// modeling_deepseek.py: layer i is MoE when i >= first_k_dense_replace and i % moe_layer_freq == 0;
// every release uses 1. Another value interleaves dense layers, which is not modelled: refused.
TEST(HfConfig, MoeLayerFreqOtherThanOneIsRefused) {
  EXPECT_TRUE(errors_of(deepseek_v2_lite()).empty());
  EXPECT_TRUE(mentions(errors_of(with(deepseek_v2_lite(), "moe_layer_freq", 2)),
                       "config.json: moe_layer_freq = 2: must be 1: MoE layers interleaved with dense ones"));
  EXPECT_TRUE(mentions(errors_of(with(deepseek_v2_lite(), "attention_bias", true)),
                       "config.json: attention_bias = true: must be false"));
}

// A LoRA target that names no module of the model is an error naming it and the model's modules.
TEST(HfConfig, LoraTargetsThatMatchNoModule) {
  auto errors = [](const ModelSpec& m, unsigned targets) {
    Plan p = plan_of(m, 2048, true);
    p.training.lora = LoraSpec{};
    p.training.lora->targets = targets;
    Violations v;
    validate_plan(p, v);
    std::vector<std::string> out;
    for (const auto& x : v.list()) out.push_back(x.to_string());
    return out;
  };
  // Mixtral: every layer's MLP is routed experts, which are not adapted.
  auto e = errors(model_preset("mixtral-8x7b"), kQProj | kGateProj);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_NE(e[0].find("training.lora.targets = \"gate_proj\": matches no module of model Mixtral-8x7B; its "
                      "modules that take adapters: q_proj, k_proj, v_proj, o_proj"),
            std::string::npos)
      << e[0];
  // GPT-3 (GeLU MLP): no gate projection.
  e = errors(model_preset("gpt3-175b"), kGateProj);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_NE(e[0].find("\"gate_proj\": matches no module"), std::string::npos) << e[0];
  EXPECT_NE(e[0].find("q_proj, k_proj, v_proj, o_proj, up_proj, down_proj (a GeLU MLP has no gate projection)"),
            std::string::npos)
      << e[0];
  // DeepSeek-V3: MLA has no k_proj; its query is compressed (q_a/q_b), so no q_proj either.
  e = errors(model_preset("deepseek-v3"), kKProj | kQProj);
  ASSERT_EQ(e.size(), 2u);
  EXPECT_NE(e[0].find("\"q_proj\": matches no module"), std::string::npos) << e[0];
  EXPECT_NE(e[1].find("\"k_proj\": matches no module of model DeepSeek-V3; its modules that take adapters: o_proj, "
                      "gate_proj, up_proj, down_proj"),
            std::string::npos)
      << e[1];
}

// Qwen3 (modeling_qwen3.py): LLaMA's layer with an RMSNorm over head_dim on every query and key head.
// Qwen3-8B by hand: embeddings 2 x 151,936 x 4,096 = 1,244,659,712; per layer q 4,096 x 4,096 + k, v 4,096 x
// 1,024 each + o 4,096 x 4,096 = 41,943,040, q and k norms 2 x 128, norms 2 x 4,096, MLP 3 x 4,096 x 12,288
// = 150,994,944: 192,946,432 x 36 = 6,946,071,552 (model card: "Number of Parameters (Non-Embedding): 6.95B");
// + final norm 4,096 = 8,190,735,360 ("8.2B").
TEST(HfConfig, Qwen3NormsEveryQueryAndKeyHead) {
  const ModelSpec m = read(qwen3_8b());
  EXPECT_TRUE(m.qk_norm);
  EXPECT_EQ(m.bias, Bias::none);
  EXPECT_FALSE(m.moe);
  EXPECT_EQ(count_params(m).total, 8'190'735'360);
  EXPECT_EQ(read(with(qwen3_8b(), "attention_bias", true)).bias, Bias::attention);  // q, k, v and o_proj
  EXPECT_TRUE(mentions(errors_of(with(qwen3_8b(), "use_sliding_window", true)),
                       "config.json: use_sliding_window = true: must be false"));
}

// Qwen3 MoE (modeling_qwen3_moe.py): the config gives the model the qwen3-30b-a3b preset describes, with the
// same parameter count (test_mbridge.cpp derives it by hand). Dense layers among the experts
// (mlp_only_layers, decoder_sparse_step != 1) are refused: no release has them and the planner does not
// model them.
TEST(HfConfig, Qwen3MoeIsThePreset) {
  ModelSpec m = read(qwen3_30b_a3b());
  ASSERT_TRUE(m.moe);
  EXPECT_EQ(m.moe->experts, 128);
  EXPECT_EQ(m.moe->top_k, 8);
  EXPECT_EQ(m.moe->ffn_hidden, 768);
  EXPECT_TRUE(m.qk_norm);
  EXPECT_EQ(count_params(m).total, 30'532'122'624);
  ModelSpec preset = model_preset("qwen3-30b-a3b");
  m.name = preset.name;
  m.preset = preset.preset;
  EXPECT_EQ(m, preset);
  EXPECT_TRUE(mentions(errors_of(with(qwen3_30b_a3b(), "decoder_sparse_step", 2)),
                       "config.json: decoder_sparse_step = 2: must be 1"));
  EXPECT_TRUE(mentions(errors_of(with(qwen3_30b_a3b(), "mlp_only_layers", json::array({0}))),
                       "config.json: mlp_only_layers = [0]: must be []"));
}

// GPT-NeoX (modeling_gpt_neox.py): one query_key_value projection, dense, a 4h GeLU MLP, two LayerNorms a
// layer, every linear with a bias, untied embed_in / embed_out, RoPE. Biderman et al. 2023 (Pythia), Table 1
// gives the non-embedding parameters, 18,915,328 / 85,056,000 / 805,736,448 for 70M / 160M / 1B; by hand,
// per layer 2 x 2h (norms) + (h x 3h + 3h) + (h^2 + h) + (h x 4h + 4h) + (4h x h + h) = 12h^2 + 13h, plus
// the final norm 2h: 6 x (12 x 512^2 + 13 x 512) + 1024 = 18,915,328. The embeddings add 2 x 50,304 x h.
TEST(HfConfig, PythiaHasItsPublishedParameterCounts) {
  struct Size { int64_t h; int layers, heads; int64_t non_embedding; };
  for (const Size& z : {Size{512, 6, 8, 18'915'328}, Size{768, 12, 12, 85'056'000}, Size{2048, 16, 8, 805'736'448}}) {
    const ModelSpec m = read(pythia(z.h, z.layers, z.heads));
    EXPECT_EQ(m.activation, Activation::gelu);
    EXPECT_EQ(m.norm, Norm::layernorm);
    EXPECT_EQ(m.bias, Bias::all);
    EXPECT_EQ(m.position_embedding, PositionEmbedding::rope);
    EXPECT_FALSE(m.tied_embeddings);
    EXPECT_EQ(m.kv_heads, z.heads);
    EXPECT_EQ(z.layers * (12 * z.h * z.h + 13 * z.h) + 2 * z.h, z.non_embedding);  // the formula above
    EXPECT_EQ(count_params(m).total, z.non_embedding + 2 * 50'304 * z.h) << z.h;
  }
  // Pythia-160M: 162,322,944 in all. attention_bias false drops the 3h + h attention biases a layer.
  EXPECT_EQ(count_params(read(pythia(768, 12, 12))).total, 162'322'944);
  const ModelSpec no_attn_bias = read(with(pythia(768, 12, 12), "attention_bias", false));
  EXPECT_EQ(no_attn_bias.bias, Bias::mlp);
  EXPECT_EQ(count_params(no_attn_bias).total, 162'322'944 - 12 * 4 * 768);
  EXPECT_TRUE(mentions(errors_of(with(pythia(768, 12, 12), "num_attention_heads", 7)),
                       "config.json: num_attention_heads = 7: must divide hidden_size (768) for model_type gpt_neox"));
  EXPECT_TRUE(mentions(errors_of(with(pythia(768, 12, 12), "hidden_act", "relu")),
                       "config.json: hidden_act = \"relu\": must be one of gelu, gelu_new, gelu_fast, gelu_pytorch_tanh"));
}

// Granite (modeling_granite.py) is LLaMA's block with scalar multipliers: granite-3.1-2b-base has, tied,
// 49,155 x 2048 embeddings + 40 x (2 x 2048^2 + 2 x 2048 x 512 + 3 x 2048 x 8192 + 2 x 2048) + 2048
// = 100,669,440 + 40 x 60,821,504 + 2048 = 2,533,531,648 parameters, as an inline LLaMA of those sizes.
TEST(HfConfig, GraniteIsLlamasBlock) {
  const ModelSpec m = read(granite_2b());
  EXPECT_EQ(m.activation, Activation::swiglu);
  EXPECT_EQ(m.norm, Norm::rmsnorm);
  EXPECT_TRUE(m.tied_embeddings);
  EXPECT_EQ(count_params(m).total, 2'533'531'648);
  json inline_llama = granite_2b();
  inline_llama["model_type"] = "llama";
  EXPECT_EQ(count_params(read(inline_llama)).total, 2'533'531'648);
  EXPECT_EQ(read(with(granite_2b(), "mlp_bias", true)).bias, Bias::mlp);
}

// StarCoder2 (modeling_starcoder2.py): GQA attention and a GeLU MLP (c_fc, c_proj), every linear with a
// bias (use_bias), LayerNorms, RoPE, tied embeddings, and Mistral's window in every layer. starcoder2-3b,
// head_dim 3072 / 24 = 128, k and v 2 x 128 = 256 wide: per layer (3072^2 + 3072) x 2 + (3072 x 256 + 256) x 2
// + (3072 x 12,288 + 12,288) + (12,288 x 3072 + 3072) + 2 x 2 x 3072 = 95,979,008; x 30, plus 49,152 x 3072
// embeddings and the final norm's 6,144: 3,030,371,328 (the model card's 3.03B).
TEST(HfConfig, StarCoder2IsAGeluModelWithAWindow) {
  const ModelSpec m = read(starcoder2_3b());
  EXPECT_EQ(m.activation, Activation::gelu);
  EXPECT_EQ(m.norm, Norm::layernorm);
  EXPECT_EQ(m.bias, Bias::all);
  EXPECT_TRUE(m.tied_embeddings);
  EXPECT_EQ(m.kv_heads, 2);
  EXPECT_EQ(m.sliding_window, 4096);
  EXPECT_EQ(count_params(m).total, 3'030'371'328);
  const ModelSpec unbiased = read(with(starcoder2_3b(), "use_bias", false));
  EXPECT_EQ(unbiased.bias, Bias::none);
  // Less every linear's bias (3072 + 2 x 256 + 3072 + 12,288 + 3072 = 22,016 a layer); the norms keep theirs.
  EXPECT_EQ(count_params(unbiased).total, 3'030'371'328 - 30 * 22'016);
  EXPECT_TRUE(mentions(errors_of(with(starcoder2_3b(), "use_bias", "false")),
                       "config.json: use_bias = \"false\": must be true or false"));
}

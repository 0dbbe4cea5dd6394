// Parameter counts against the published checkpoints, and LoRA counts against peft and the textbook.
#include <gtest/gtest.h>

#include "paraplan/bytes_per_param.hpp"
#include "paraplan/memory.hpp"
#include "paraplan/params.hpp"
#include "paraplan/presets.hpp"

using namespace paraplan::planner;

namespace {
int64_t params_of(const char* id) { return count_params(model_preset(id)).total; }
}  // namespace

// LLaMA-3-8B: per layer q 4096^2 + k,v 2*4096*1024 + o 4096^2 = 41,943,040; MLP 3*4096*14336 = 176,160,768;
// 2 RMSNorms 8,192 -> 218,112,000 x 32 = 6,979,584,000; embedding + untied head 2*128,256*4,096 =
// 1,050,673,152; final norm 4,096. Total 8,030,261,248 (the HF checkpoint's count).
TEST(Params, Llama3_8B) { EXPECT_EQ(params_of("llama3-8b"), 8'030'261'248); }

// LLaMA-3-70B: per layer 150,994,944 + 704,643,072 + 16,384 = 855,654,400 x 80 + 2*128,256*8,192 + 8,192.
TEST(Params, Llama3_70B) { EXPECT_EQ(params_of("llama3-70b"), 70'553'706'496); }

// LLaMA-3.1-405B: per layer 570,425,344 + 2,617,245,696 + 32,768 = 3,187,703,808 x 126 + 2*128,256*16,384 + 16,384.
TEST(Params, Llama3_405B) { EXPECT_EQ(params_of("llama3-405b"), 405'853'388'800); }

// GPT-3: 12 L h^2 + 13 L h + (V + s) h = 173,946,175,488 + 15,335,424 + 642,748,416 (Narayanan 2021 Eq. 2's
// parameter form with V = 50,257) = 174,604,259,328, "~174.6B".
TEST(Params, Gpt3_175B) {
  EXPECT_EQ(params_of("gpt3-175b"), 174'604'259'328);
  EXPECT_NEAR(params_of("gpt3-175b") / 1e9, 174.6, 0.05);
}

// Mixtral-8x7B: attention 41,943,040 + 8 experts x 176,160,768 + router 32,768 + norms 8,192 per layer,
// x 32, + 2 * 32,000 * 4,096 + 4,096 = 46,702,792,704 ("46.7B"); active (2 of 8 experts) 12,879,925,248.
TEST(Params, Mixtral) {
  const ParamCount c = count_params(model_preset("mixtral-8x7b"));
  EXPECT_EQ(c.total, 46'702'792'704);
  EXPECT_EQ(c.active, 46'702'792'704 - 32LL * 6 * 176'160'768);
}

// DeepSeek-V3 with MLA: attention 187,107,328 per layer (q_a 7168x1536, q_a_norm, q_b 1536x24576,
// kv_a 7168x576, kv_a_norm, kv_b 512x32768, o 16384x7168); dense layers add 3*7168*18432 and norms;
// MoE layers add 257 experts x 3*7168*2048 and the 256x7168 router. 3 dense + 58 MoE layers +
// 2*129,280*7,168 + 7,168 = 671,026,404,352 ("671B"; the checkpoint adds 58x256 router biases and the MTP module).
TEST(Params, DeepSeekV3) {
  const ParamCount c = count_params(model_preset("deepseek-v3"));
  EXPECT_EQ(c.total, 671'026'404'352);
  // 37B activated per token (DeepSeek-V3 report §1): top-8 of 256 routed experts.
  EXPECT_NEAR(c.active / 1e9, 37.5, 0.5);
}

// Narayanan et al. 2021 Table 1 lists the family by size; our counts round to the published figure.
TEST(Params, MegatronFamilyMatchesPublishedSizes) {
  const std::pair<const char*, double> rows[] = {{"gpt-1.7b", 1.7}, {"gpt-3.6b", 3.6},   {"gpt-7.5b", 7.5},
                                                 {"gpt-18.4b", 18.4}, {"gpt-39.1b", 39.1}, {"gpt-76.1b", 76.1},
                                                 {"gpt-145.6b", 145.6}, {"gpt-310.1b", 310.1},
                                                 {"gpt-529.6b", 529.6}, {"gpt-1008b", 1008}};
  for (const auto& [id, billions] : rows) EXPECT_NEAR(params_of(id) / 1e9, billions, 0.06) << id;
}

// Textbook (chapter 10.2): LoRA on a 4096x4096 matrix with r = 8 trains r(d+k) = 65,536 parameters,
// 65,536 / 16,777,216 = 0.390625% of the matrix. The chapter prints 0.76%, which is wrong (docs/teaching.md).
TEST(Lora, TextbookMatrix) {
  EXPECT_EQ(lora_params(4096, 4096, 8), 65'536);
  EXPECT_DOUBLE_EQ(100.0 * lora_params(4096, 4096, 8) / (4096.0 * 4096.0), 0.390625);
}

// peft print_trainable_parameters for LLaMA-3-8B, LoraConfig(r=8, target_modules=["q_proj","v_proj"]):
// q 8*(4096+4096) + v 8*(4096+1024) = 106,496 per layer x 32 = 3,407,872 trainable of
// 8,030,261,248 + 3,407,872 = 8,033,669,120 (0.0424%).
TEST(Lora, Llama3_8B_QV) {
  LoraSpec lora;
  lora.rank = 8;
  lora.targets = kQProj | kVProj;
  const ModelParams mp = model_params(model_preset("llama3-8b"), lora);
  EXPECT_EQ(mp.trainable_total, 3'407'872);
  EXPECT_EQ(mp.total, 8'033'669'120);
  EXPECT_NEAR(100.0 * mp.trainable_total / mp.total, 0.0424, 0.00005);
}

// All seven projections at r = 16 on LLaMA-3-8B, per layer: q and o 2*16*(4096+4096) = 262,144; k and v
// 2*16*(4096+1024) = 163,840; gate, up and down 3*16*(4096+14336) = 884,736; sum 1,310,720 (x 32 layers).
TEST(Lora, Llama3_8B_AllProjections) {
  LoraSpec lora;
  lora.rank = 16;
  lora.targets = kQProj | kKProj | kVProj | kOProj | kGateProj | kUpProj | kDownProj;
  const ModelParams mp = model_params(model_preset("llama3-8b"), lora);
  const int64_t per_layer = 16 * (4096 + 4096) * 2 + 16 * (4096 + 1024) * 2 + 16 * (4096 + 14336) * 3;
  EXPECT_EQ(per_layer, 1'310'720);
  EXPECT_EQ(mp.trainable_total, 32 * per_layer);
}

// Tensor parallelism shards linear weights but not norms: LLaMA-3-8B layer at tp=4 holds
// 218,103,808/4 sharded + 8,192 replicated parameters.
TEST(Params, TensorParallelSharding) {
  const ModelParams mp = model_params(model_preset("llama3-8b"), std::nullopt);
  const ShardedParams base = mp.dense_layer.base();
  EXPECT_EQ(base.tp_sharded, 218'103'808);
  EXPECT_EQ(base.replicated, 8'192);
  EXPECT_DOUBLE_EQ(base.per_rank(4, 1), 218'103'808 / 4.0 + 8'192);
}

// Textbook (chapter 10.3): a 7B model in fp16 needs 7e9 x 2 B = 14 GB for its parameters alone.
TEST(Textbook, SevenBillionInFp16Is14GB) { EXPECT_DOUBLE_EQ(7e9 * weight_bytes_per_param(Precision::fp16), 14e9); }

// QLoRA (Dettmers et al. 2023 §3): NF4 with double quantisation costs 4 + 8/64 + 32/(64*256) = 4.127 bits.
TEST(Lora, Nf4BytesPerParam) { EXPECT_NEAR(nf4_bytes_per_param(), 0.516, 0.0005); }

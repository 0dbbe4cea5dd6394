#pragma once
// The decoder, built from the plan's ModelSpec: LLaMA-style (RMSNorm, RoPE, grouped-query attention,
// SwiGLU) or GPT-shaped (LayerNorm, GeLU, biases, learned positions), with LoRA adapters where the
// plan asks. This rank's part of it: the units of its pipeline stage (rank_layout), each tensor its
// tensor-parallel slice. Its parameters live in the engine; the forward runs the ops of functions.hpp
// unit by unit, with a boundary between units where the engine gathers (ZeRO-3) and reduces gradients,
// one model chunk at a time (a pipeline stage may hold several: interleaved and ZBV schedules).
#include <ATen/ATen.h>

#include <map>
#include <optional>
#include <vector>

#include "functions.hpp"
#include "paraplan/exec/layout.hpp"
#include "paraplan/plan.hpp"
#include "zero_engine.hpp"

namespace paraplan::exec {

// One micro-batch as the chunks see it: ids [b, s] for the first chunk, targets [b, s] for the last,
// and what dropout draws its masks from.
struct MicroBatch {
  at::Tensor ids, targets;
  std::vector<int64_t> sequences;  // global index of each of its sequences
  int64_t step = 0;
};

class Model {
 public:
  Model(const planner::Plan& plan, const ModelExtras& extras, TpGroup tp, uint64_t seed, ZeroEngine& engine);

  // Forward of model chunk `chunk` (one this rank holds): x is its input activation ([b*s, h], or
  // [b*s / tp, h] under sequence parallelism; undefined for chunk 0, which starts from mb.ids). Returns
  // the output activation, or for the last chunk the summed token cross-entropy times `scale`.
  at::Tensor forward_chunk(int chunk, const at::Tensor& x, const MicroBatch& mb, double scale);
  // Logits [b*s, vocab] for ids [b, s] (no gradient bookkeeping; one rank holding the whole model).
  at::Tensor logits(const at::Tensor& ids);

  const std::vector<int>& chunks() const { return chunks_; }  // the model chunks this rank holds
  int first_unit(int chunk) const;
  int last_unit(int chunk) const;
  bool is_last_chunk(int chunk) const { return chunk == n_chunks_ - 1; }
  int64_t tokens_per_rank_activation(int64_t tokens) const;  // rows of an activation between chunks

 private:
  struct Tables {
    at::Tensor cos, sin, mask;
  };
  Tables tables(int64_t seq_len) const;
  at::Tensor embed(int unit, const at::Tensor& ids, const MicroBatch& mb);
  at::Tensor layer(int unit, const at::Tensor& x, const Tables& t, int64_t b, int64_t s, const MicroBatch& mb);
  at::Tensor head_loss(int unit, const at::Tensor& x, const MicroBatch& mb, double scale);
  at::Tensor head_logits(int unit, const at::Tensor& x);
  Projection proj(int unit, Role w, Role b, planner::LoraTarget target) const;
  at::Tensor normed(int unit, Role w, Role b, const at::Tensor& x);
  DropoutKey dropout_key(const MicroBatch& mb, int64_t site) const;
  int64_t first_row(int64_t tokens) const;  // this rank's first token row under SP
  std::vector<at::Tensor> trainable(int unit) const;
  const at::Tensor& param(int unit, Role r) const;
  int64_t slot(int unit, Role r) const;
  int find(int unit, Role r, planner::LoraTarget target = planner::kQProj) const;
  const at::Tensor& embedding_table(int* unit_out = nullptr) const;

  planner::Plan plan_;
  const planner::ModelSpec& spec_;
  ModelExtras extras_;
  TpGroup tp_;
  uint64_t seed_;
  ZeroEngine& engine_;
  int n_chunks_ = 1;
  std::vector<int> chunks_;
  std::map<int, std::pair<int, int>> chunk_units_;  // chunk -> [first, last] unit
  int embed_unit_ = -1, head_unit_ = -1;
  int64_t tied_slot_ = kNoSlot;  // the head's alias of the tied embedding's gradient slot
  int64_t vocab_rows_ = 0, vocab_start_ = 0, vocab_valid_ = 0;  // this rank's vocabulary slice
  KvHeads kv_;
  bool eval_ = false;  // logits(): no dropout
  Tables tables_;  // for training.seq_len, made once (RoPE cos/sin and the causal mask)
  std::vector<std::map<std::pair<int, int>, int>> index_;  // per unit: (role, lora target) -> param index
};

}  // namespace paraplan::exec

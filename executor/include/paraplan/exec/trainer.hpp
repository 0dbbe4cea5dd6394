#pragma once
// Training one plan on this rank: its stage and tensor-parallel slice of the model, data, the
// data-parallel engine, the pipeline runner, the optimizer and measurement.
// Public header without LibTorch (pimpl).
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "paraplan/exec/communicator.hpp"
#include "paraplan/exec/layout.hpp"
#include "paraplan/exec/memory_meter.hpp"
#include "paraplan/exec/op_timer.hpp"
#include "paraplan/plan.hpp"

namespace paraplan::exec {

struct TrainOptions {
  planner::Plan plan;
  ModelExtras extras;
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  uint64_t seed = 0;             // weight initialisation and data sampling
  std::string data;              // text or JSONL file; empty: the built-in synthetic corpus
  std::string load_dir;          // Hugging Face directory with the (base) weights; empty: initialise
  std::string adapter_dir;       // peft adapter directory to start LoRA from; empty: initialise
  int local_rank = 0;            // CUDA device index on this node
};

struct StepStats {
  int step = 0;              // 1-based
  double loss = 0;           // global-batch mean cross-entropy, nats per token
  double step_s = 0;         // wall time of the step on this rank
  double comm_s = 0;         // blocked in communication
  double pp_s = 0;           // of which blocked on the pipeline's sends and receives (mostly idle: the bubble)
  double tokens_per_s = 0;   // this rank's tokens per second
  std::vector<OpTally> op_times;  // step_s by class of work (op_timer.hpp), idle last
};

struct MemoryStats {
  bool measured = false;                          // the counting allocator was installed
  std::array<int64_t, kMemCategories> at_peak{};  // bytes by category at the peak of the training steps
  int64_t peak = 0;
};

class Trainer {
 public:
  // Builds everything; the groups give this rank's place (stage, tensor-parallel rank) and its tp, pp
  // and data-parallel groups. Throws with a message naming the file, tensor or field when input is wrong.
  Trainer(const TrainOptions& options, ProcessGroups& groups);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  StepStats step();                  // one optimizer step (all micro-batches); collective
  // The pipeline ops this rank ran in the last step ("F0 F1 B0 ...": planner::to_string of the
  // schedule's ops), its stage, and the op of the step's memory peak (-1 unmetered).
  const std::string& schedule_log() const;
  int stage() const;
  int peak_op() const;
  MemoryStats memory() const;        // since the end of set-up
  int64_t trainable_params() const;  // whole model (not this rank's shard)
  int64_t tokens_per_step() const;   // this rank
  // Logits [batch * seq, vocab] for token ids [batch, seq] (collective under ZeRO-3). Only for a rank
  // that holds the whole model (tp = pp = 1): throws otherwise.
  std::vector<float> logits(const std::vector<int64_t>& ids, int64_t batch, int64_t seq);
  // Collective; only dp rank 0 writes. max_shard_bytes splits the weights as transformers does.
  void save(const std::string& dir, uint64_t max_shard_bytes = 5ull << 30);
  void save_adapter(const std::string& dir);  // LoRA only: adapter_model.safetensors + adapter_config.json
  void save_merged(const std::string& dir);   // LoRA only: W + (alpha/r) B A, adapters dropped

  // Training checkpoints (paraplan/exec/train_checkpoint.hpp). Collective: every rank writes what it
  // owns of the weights, master weights and optimizer moments into ROOT, rank 0 the index; returns the
  // step directory, complete when this returns.
  std::string write_checkpoint(const std::string& root);
  // Collective: loads the checkpoint `path` names (a root: its latest complete step) and returns its
  // step; the next step() trains the step after it, on the data an uninterrupted run would have seen.
  // FormatError naming the file and what does not match (another plan, number of ranks, ZeRO stage,
  // options), or that the file is corrupt or truncated; PlanError when it is at `steps` already.
  int resume(const std::string& path, int steps);
  int steps_done() const;  // optimizer steps since the start of training (a resumed run included)

 private:
  void save_kind(const std::string& dir, int kind, uint64_t max_shard_bytes);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace paraplan::exec

#pragma once
// The data-parallel engine: every parameter, gradient and optimizer state lives in flat buffers, one
// region per unit (embedding, each decoder layer, head), each padded to a multiple of the data-parallel
// degree N and split into N equal chunks; rank r owns chunk r of every unit (FSDP's flat-parameter
// sharding, Zhao et al. 2023 §3.2). By ZeRO stage (Rajbhandari et al. 2019 §5):
//   0  full parameters, full gradients (one bucket per unit, all-reduced as soon as its backward is
//      done, overlapping the rest of the backward), full optimizer states;
//   1  + optimizer states (and fp32 master weights) for the own chunks only; after the step the
//      parameters are all-gathered;
//   2  + gradients: each unit's gradients accumulate into one reusable bucket, are reduce-scattered
//      when the unit's backward is done and only the own chunk is kept;
//   3  + parameters: only the own chunks persist; a unit is all-gathered into one reusable buffer just
//      before its forward and again before its backward, and is gone once the next unit is gathered.
// The reusable buffers (bucket, reduce-scatter output, gather buffer) are sized for the largest unit
// and allocated once, so memory is the same at every step and the planner can predict it exactly.
// Under tensor parallelism each rank's engine holds its slices, and the data-parallel group is the
// ranks with the same slices. Gradients that are partial sums over the tensor-parallel group (or over
// the ranks sharing a key/value head: layout.hpp GradSum) are summed there first, in place, before the
// data-parallel reduction. With pipeline parallelism the units of one model chunk take part in each
// backward (or W) pass, and a unit is gathered for the backward only from a unit of its own chunk.
#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <vector>

#include "functions.hpp"
#include "paraplan/exec/communicator.hpp"
#include "paraplan/exec/layout.hpp"
#include "paraplan/exec/memory_meter.hpp"

namespace paraplan::exec {

struct ZeroEngineOptions {
  int zero = 0;
  at::Device device = at::kCPU;
  at::ScalarType compute = at::kFloat;  // parameters and activations
  at::ScalarType grad = at::kFloat;     // gradients (fp32 "main grads" by default)
  bool master = false;                  // fp32 master weights (with a 16-bit compute dtype)
  // A unit whose parameters another unit of this rank uses too (the tied embedding, used again by the
  // head): under ZeRO-2/3 its gradients get a bucket of their own, kept across the other units'
  // reductions, and under ZeRO-3 its parameters a gather buffer of their own, gathered once per step.
  int shared_unit = -1;
  // QLoRA (Dettmers et al. 2023): the frozen linear weights are stored as NF4 (nf4.hpp), the other frozen
  // parameters in bf16; a unit's frozen parameters are dequantised into one reusable buffer of the
  // compute dtype when it runs (as ZeRO-3 gathers), "dequantised per layer for the matmul".
  bool nf4 = false;
};

class ZeroEngine final : public GradSink {
 public:
  // tp: the tensor-parallel group (partial gradients of GradSum::tp); kv: the ranks sharing this rank's
  // key/value heads (GradSum::kv_replicas; null without replication).
  ZeroEngine(const ModelLayout& layout, Communicator& dp, const ZeroEngineOptions& opt, Communicator* tp = nullptr,
             Communicator* kv = nullptr);
  ~ZeroEngine() override;

  const ModelLayout& layout() const { return layout_; }
  const ZeroEngineOptions& options() const { return opt_; }
  Communicator& dp() { return dp_; }
  int units() const { return static_cast<int>(units_.size()); }

  // The parameters of a unit as compute tensors (views), in layout order. Under ZeRO-3 their values are
  // valid only while the unit is gathered.
  const std::vector<at::Tensor>& params(int unit) const;
  int64_t slot_id(int unit, size_t param) const;  // kNoSlot for frozen parameters
  // A second slot for the same gradient whose arrivals do not count (the head's use of a tied
  // embedding: the unit is finished by its own op, which runs after the head's in every schedule).
  int64_t alias_slot(int64_t slot);
  // The whole gradient of a parameter (ZeRO 0-1, after end_step): tied copies are summed through it.
  at::Tensor grad_of(int unit, size_t param) const;

  // Fills every parameter from `value(param, full_tensor)` (initialisation or a checkpoint): called once
  // per parameter with a full-shaped tensor to fill; the engine keeps what this rank holds.
  void fill(const std::function<void(const ParamInfo&, at::Tensor&)>& value);
  // Calls `use` with every parameter's full value, unit by unit (ZeRO-3 gathers; a collective: every
  // rank must call it).
  void visit_full(const std::function<void(const ParamInfo&, const at::Tensor&)>& use);

  // One optimizer step: begin_step, then per pass that computes weight gradients (the backward of a
  // micro-batch through a model chunk, or its W pass) begin_grads(chunk, last) ... end_grads(chunk), then
  // end_step (waits for the gradient reductions) before the optimizer. `last`: the chunk's final such pass
  // of the step (ZeRO-0/1 reduce then). While `w_pass` is set (the W pass of a zero-bubble schedule), a
  // unit is finished as soon as its last gradient arrives (there is no boundary node).
  void begin_step();
  void begin_grads(int chunk, bool last, bool w_pass = false);
  void end_grads(int chunk);
  void end_step();
  // The unit's parameters made usable: ZeRO-3 gathers them, QLoRA dequantises the frozen ones (no-op
  // otherwise, or when the unit is ready already).
  void gather(int unit);
  void after_optimizer();  // ZeRO-1/2: all-gather the updated parameter chunks

  // The optimizer's view of one unit on this rank: the fp32 values it updates (parameters, or master
  // weights), their gradients, and where the result goes when those are master weights.
  struct OptimizerSlice {
    at::Tensor values;    // updated in place
    at::Tensor grads;
    at::Tensor compute;   // 16-bit parameters to refresh from values (undefined without master weights)
  };
  OptimizerSlice optimizer_slice(int unit);

  // Training checkpoints. What this rank owns of a unit: chunk rank() of the padded flat trainable and
  // frozen parameters and of the fp32 master weights — the ZeRO-3 shards themselves, views into the
  // replicated buffers otherwise. Writable: a resume fills them, then replicate_owned() rebuilds the
  // copies every rank holds (a collective).
  struct Owned {
    at::Tensor trainable, frozen, master;  // master undefined without master weights
  };
  Owned owned(int unit);
  void replicate_owned();

  // Bytes of the engine's persistent buffers in a category (weights, gradients, master, buffers).
  int64_t persistent_bytes(MemCategory c) const;

  // GradSink
  at::Tensor slot(int64_t id) override;
  void arrived(int64_t id) override;
  void enter_unit_forward(int unit) override;
  void leave_unit_backward(int unit) override;

 private:
  struct Unit;
  void finish_unit(int unit);
  void sum_partial_grads(Unit& u);
  at::TensorOptions opts(at::ScalarType t) const { return at::TensorOptions().dtype(t).device(opt_.device); }

  const ModelLayout& layout_;
  Communicator& dp_;
  ZeroEngineOptions opt_;
  Communicator* tp_ = nullptr;
  Communicator* kv_ = nullptr;
  std::vector<std::unique_ptr<Unit>> units_;
  std::vector<std::pair<int, int>> slots_;  // slot id -> (unit, param index)
  at::Tensor gather_buf_, bucket_, rs_out_;
  at::Tensor shared_bucket_, shared_gather_;  // ZeRO-2/3, ZeRO-3: the shared unit's own
  at::Tensor dequant_buf_, shared_dequant_;    // QLoRA: frozen parameters of the unit running (and the shared)
  int dequantised_ = -1;
  bool shared_dequantised_ = false;
  void dequantise(int unit);
  bool shared_gathered_ = false;
  std::vector<bool> counts_;  // per slot: whether its arrivals count (not for aliases)
  int gathered_ = -1;     // ZeRO-3: unit whose parameters the gather buffer holds
  int bucket_unit_ = -1;  // ZeRO-2/3: unit whose gradients the bucket accumulates
  bool last_micro_ = true;  // of the chunk in begin_grads
  bool w_pass_ = false;
  std::vector<std::unique_ptr<PendingOp>> pending_;
};

}  // namespace paraplan::exec

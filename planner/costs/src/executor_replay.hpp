#pragma once
// The executor's allocations replayed, tensor by tensor, in the order its code makes and frees them
// (executor/src/model.cpp, *_fn.cpp, pipeline_runner.cpp, zero_engine.cpp): what the counting
// allocator sees on CPU workers. Each replay step names the executor code it mirrors. Exact for fp32
// (the CPU executor); for 16-bit activations it applies the same sequence with 2-byte elements, which
// the CUDA caching allocator does not count this way (GPU predictions are estimates).
// PARAPLAN_REPLAY_TRACE=1 prints the replay in the format of the executor's PARAPLAN_MEMTRACE, so
// that the two can be compared line by line.
#include <functional>
#include <string>
#include <vector>

#include "paraplan/plan.hpp"

namespace paraplan::planner {

// What fixes the executor's allocations for one micro-batch on one rank.
struct ExecDims {
  double d = 4;                   // bytes per activation element
  double T = 0, b = 0, s = 0;     // tokens of the micro-batch, its sequences, their length
  double Tl = 0;                  // rows of the activations between TP regions (T / tp under SP)
  double h = 0, hd = 0;
  double heads = 0, kv = 0;       // query and key/value heads on this rank
  double q = 0, k = 0, f = 0;     // this rank's widths: heads*hd, kv*hd, ffn / tp
  double vocab_rows = 0, vocab_valid = 0;  // this rank's vocabulary rows, of which real
  double r = 0;                   // LoRA rank
  unsigned lora = 0;              // LoraTarget bits that carry an adapter
  bool tp = false, sp = false;    // tensor parallelism (tp > 1); sequence parallelism
  int tp_size = 1;
  bool flash = true, selective = false, full = false, dropout = false;
  bool rms = true, swiglu = true, rope = true, qkv_bias = false, all_bias = false, learned_pos = false;
  bool frozen_base = false;       // LoRA: base weights (norms included) frozen
  bool adapter(LoraTarget t) const { return (lora & t) != 0; }
};
ExecDims exec_dims(const Plan& plan);

// Allocation bookkeeping: bytes alive above the replay's start, and the highest point, with the part
// of it that the executor counts as buffers (ZeRO reduce-scatter transients).
class Replay {
 public:
  explicit Replay(double start = 0, bool quiet = false);
  double cur = 0, peak = 0, buffers = 0, buffers_at_peak = 0;
  void alloc(double n);
  void free(double n);
  void alloc_buffer(double n);
  void free_buffer(double n);
  void scalar();                    // an in-place op with a Python scalar: +8, +4 (wrapped, then cast), freed
  void scalar_op(double result);    // an out-of-place op with a scalar: +8 +4, the result, -4 -8
  void int_scalar_op(double result);  // the same with an int64 scalar: +8, the result, -8
  void mark(const std::string& what) const;
  bool tracing() const { return trace_; }

 private:
  void note(double delta) const;
  bool trace_ = false;
};

// A weight gradient kept for the W pass of a zero-bubble schedule (GradSink::weight_grad): the tensors
// its closure holds, dropped when it has run. In the order the B pass made them.
struct WItem {
  enum class Kind { column, row, norm, embedding } kind = Kind::column;
  std::vector<double> widths;  // column: output widths (for the bias sums)
  bool biases = false;
  double adapters = 0;  // d(xA^T) and x A^T kept (each this many bytes)
  double dy = 0;        // the output gradient(s) kept
  double x = 0;         // the input kept
  double stats = 0;     // norm: rstd (and the mean)
  double ids = 0;       // embedding: the token ids
  double rs = 0;        // the unit's reduce-scatter chunk when this is the unit's last gradient

  static WItem of(Kind k, double dy_bytes, double x_bytes) {
    WItem i;
    i.kind = k;
    i.dy = dy_bytes;
    i.x = x_bytes;
    return i;
  }
};
using Deferred = std::vector<WItem>;

// One model chunk as the executor runs it: its units.
struct ChunkShape {
  bool embedding = false;
  int layers = 0;
  bool head = false;
  bool first = false;  // model chunk 0 (its layers start from the embedding: the LoRA frozen prefix)
};

// ZeRO-2/3 reduce-scatter transients in the backward: the bytes of one unit's reduce-scatter chunk
// (gloo's ring keeps one incoming chunk, counted as buffers), per unit kind; 0 without ZeRO >= 2 or dp = 1.
struct UnitReduce {
  double embedding = 0, layer = 0, head = 0;
};

// The forward of one micro-batch through a chunk, from a baseline where its input (c > 0) has been
// received: leaves the chunk's saved activations and its output (non-last chunk) alive.
void replay_forward(Replay& r, const ExecDims& x, const ChunkShape& c);
// The backward of that micro-batch (whole, not split), from the pipeline runner's receive of the
// gradient (or the loss's seed) to the end of the pass: ends with the input gradient (c > 0) alive and
// everything else of the micro-batch's chunk freed.
// `received`: the gradient came from another stage (else it was handed over on this one, or it is the
// loss's seed, allocated here).
// after_receive runs right after that allocation (the runner drops what it sent there). With `w` (a
// zero-bubble B pass) the weight gradients are kept there for replay_weights.
void replay_backward(Replay& r, const ExecDims& x, const ChunkShape& c, const UnitReduce& rs, bool received,
                     const std::function<void()>& after_receive, Deferred* w = nullptr);
// The W pass: the kept weight gradients, in order.
void replay_weights(Replay& r, const ExecDims& x, const Deferred& w);

// Bytes the forward leaves alive (saved activations, the output excluded), and the output.
struct ChunkBytes {
  double saved = 0, output = 0;
};
ChunkBytes chunk_bytes(const ExecDims& x, const ChunkShape& c);

}  // namespace paraplan::planner

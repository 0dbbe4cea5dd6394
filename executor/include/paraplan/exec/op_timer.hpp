#pragma once
// Where a training step's time goes, by class of work: gemm (linear layers and their LoRA adapters),
// memory (memory-bound ops: embedding, norms, rope, activations, loss), attention, optimizer, and
// comm.<collective>.<group> (blocked in a collective of one process group). Scopes nest, and each
// second is charged to the innermost open scope only (a gradient bucket reduced from inside a linear
// layer's backward is communication, not GEMM). "idle" is the rest of the step: the autograd engine,
// residual adds, data, bookkeeping and waiting outside collectives.
// The step runs on one thread; scopes on other threads are not counted. On CPU workers the times are
// the work's; on a GPU they are the host's (kernels run asynchronously), which the docs say.
// No LibTorch here.
#include <cstdint>
#include <string>
#include <vector>

namespace paraplan::exec {

// Charges the time while it lives to `op_class`, a string that outlives the step (a literal, or a
// Communicator's class names).
class OpScope {
 public:
  explicit OpScope(const char* op_class);
  ~OpScope();
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

 private:
  bool counted_ = false;  // a step was being counted when it opened
};

struct OpTally {
  std::string op_class;
  double seconds = 0;
  int64_t calls = 0;
};

// Starts counting a step on this thread (clears the tallies).
void op_timer_begin_step();
// The step's tallies, by class in first-use order, and "idle": step_s minus their sum (at least 0).
std::vector<OpTally> op_timer_end_step(double step_s);

}  // namespace paraplan::exec

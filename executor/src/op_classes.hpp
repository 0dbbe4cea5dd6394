#pragma once
// The classes of compute a training step's time is counted in (op_timer.hpp), shared by the decoder's
// ops (functions.cpp, linear_fn.cpp, vocab_fn.cpp, attention_fn.cpp): gemm (linear layers and their
// LoRA adapters), memory (memory-bound ops: embedding, norms, rope, activations, dropout, loss) and
// attention. No LibTorch here.
#include "paraplan/exec/op_timer.hpp"

namespace paraplan::exec {

inline constexpr char kGemm[] = "gemm";
inline constexpr char kMemory[] = "memory";
inline constexpr char kAttention[] = "attention";

}  // namespace paraplan::exec

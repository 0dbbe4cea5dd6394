#pragma once
// Bounds on what a plan may ask for. Each lies far beyond every real model and cluster (the reason is
// beside it) and keeps the planner's integer arithmetic inside 64 bits; input past a bound is refused
// with a message naming the field, the value and the bound, never wrapped or clamped. Byte counts,
// FLOPs and times are doubles: they may pass 2^63 without overflow (report.hpp writes them).
#include <cstdint>

namespace paraplan::planner::limits {

inline constexpr int64_t kLayers = 1 << 20;         // largest published: 128 (GPT-1T, Narayanan 2021 Table 1)
inline constexpr int64_t kHeads = 1 << 20;          // largest published: 160 (GPT-1T)
inline constexpr int64_t kWidth = 1 << 24;          // hidden, ffn, head_dim, vocab, MLA ranks: 16,777,216 (largest
                                                    // published ffn 73,728 (PaLM 540B), vocab 256,000 (Gemma))
inline constexpr int64_t kExperts = 1 << 20;        // largest published: 2,048 (Switch-C, Fedus et al. 2021)
inline constexpr int64_t kSeqLen = int64_t{1} << 32;  // tokens per sequence (and learned positions, window)
// A model's parameters: a thousand times the largest published dense model (1T). Checked on a count in
// double (no overflow for any dimensions) before the exact int64 count runs, whose every product and sum
// is then below it; below 2^53, so the double count is exact too.
inline constexpr double kParams = 1e15;
inline constexpr int64_t kGpus = 1 << 24;           // cluster.gpus, dp: 16,777,216 (largest clusters: ~1e5)
inline constexpr int64_t kDegree = 1 << 20;         // tp, pp, cp, ep, micro_batch, LoRA rank
inline constexpr int64_t kGlobalBatch = int64_t{1} << 40;  // sequences per step

}  // namespace paraplan::planner::limits

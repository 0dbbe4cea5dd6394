#pragma once
// Collectives on activations for tensor and sequence parallelism (internal; includes ATen).
#include <ATen/ATen.h>

#include <vector>

#include "functions.hpp"

namespace paraplan::exec {

// A TP group through an autograd context's saved_data: [communicator, size, rank, sp].
inline std::vector<int64_t> pack_tp(const TpGroup& tp) {
  return {reinterpret_cast<int64_t>(tp.comm), tp.size, tp.rank, tp.sp ? 1 : 0};
}
inline TpGroup unpack_tp(const std::vector<int64_t>& v) {
  return TpGroup{reinterpret_cast<Communicator*>(v[0]), static_cast<int>(v[1]), static_cast<int>(v[2]), v[3] != 0};
}

// Sums t over the TP group, in place.
void tp_allreduce(const TpGroup& tp, at::Tensor& t);
// The token slices [T / tp, w] of every rank, as one new [T, w] tensor.
at::Tensor tp_gather_rows(const TpGroup& tp, const at::Tensor& slice);
// Sums full [T, w] over the group and returns this rank's token slice (a new [T / tp, w]); full's
// contents are destroyed.
at::Tensor tp_reduce_scatter_rows(const TpGroup& tp, at::Tensor& full);

// Statistics, softmax and losses run in at least fp32: 16-bit inputs are widened, fp32 and fp64 kept.
inline bool is_wide(at::ScalarType t) { return t == at::kFloat || t == at::kDouble; }
inline at::Tensor wide(const at::Tensor& x) { return is_wide(x.scalar_type()) ? x : x.to(at::kFloat); }

// g += alpha * a . b without a temporary when the dtypes agree (BLAS gemm with beta = 1).
void accumulate_mm(at::Tensor g, const at::Tensor& a, const at::Tensor& b, double alpha = 1.0);
// g += x, converting x to g's dtype when they differ.
void accumulate(at::Tensor g, const at::Tensor& x);

}  // namespace paraplan::exec

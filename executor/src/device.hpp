#pragma once
// What differs between CPU workers and CUDA devices: synchronisation for timing and the peak-memory
// source (the counting allocator on CPU, the CUDA caching allocator's statistics on GPUs). The CUDA
// side is compiled only against a CUDA LibTorch (PARAPLAN_CUDA_TORCH).
#include <ATen/ATen.h>

#include <cstdint>

namespace paraplan::exec {

bool cuda_build();                       // this binary was built against a CUDA LibTorch
int cuda_device_count();                 // 0 without CUDA
void synchronize(const at::Device& d);   // waits for queued kernels (no-op on CPU)
void reset_peak(const at::Device& d);    // restart the peak from what is allocated now
int64_t peak_bytes(const at::Device& d);     // peak allocated bytes since reset_peak
int64_t current_bytes(const at::Device& d);  // allocated now

// PARAPLAN_GPU_COMM=gloo: GPU ranks communicate over gloo (through host copies) instead of NCCL, so
// that several ranks can share one GPU (NCCL refuses two ranks on one device); each rank then uses
// device LOCAL_RANK modulo the devices visible.
bool gpu_ranks_over_gloo();

}  // namespace paraplan::exec

#include "device.hpp"

#include <cstdlib>
#include <string>

#include "paraplan/exec/memory_meter.hpp"

#ifdef PARAPLAN_CUDA_TORCH
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace paraplan::exec {

#ifdef PARAPLAN_CUDA_TORCH
namespace cca = c10::cuda::CUDACachingAllocator;
constexpr size_t kAggregate = static_cast<size_t>(c10::cuda::CUDACachingAllocator::StatType::AGGREGATE);
#endif

bool cuda_build() {
#ifdef PARAPLAN_CUDA_TORCH
  return true;
#else
  return false;
#endif
}

int cuda_device_count() {
#ifdef PARAPLAN_CUDA_TORCH
  return static_cast<int>(c10::cuda::device_count());
#else
  return 0;
#endif
}

void synchronize(const at::Device& d) {
#ifdef PARAPLAN_CUDA_TORCH
  if (d.is_cuda()) c10::cuda::device_synchronize();
#else
  (void)d;
#endif
}

void reset_peak(const at::Device& d) {
#ifdef PARAPLAN_CUDA_TORCH
  if (d.is_cuda()) {
    cca::resetPeakStats(d.index());
    return;
  }
#endif
  (void)d;
  reset_memory_peak();
}

int64_t peak_bytes(const at::Device& d) {
#ifdef PARAPLAN_CUDA_TORCH
  if (d.is_cuda()) return cca::getDeviceStats(d.index()).allocated_bytes[kAggregate].peak;
#endif
  (void)d;
  return memory_snapshot().peak_total;
}

int64_t current_bytes(const at::Device& d) {
#ifdef PARAPLAN_CUDA_TORCH
  if (d.is_cuda()) return cca::getDeviceStats(d.index()).allocated_bytes[kAggregate].current;
#endif
  (void)d;
  return memory_snapshot().current_total;
}

bool gpu_ranks_over_gloo() {
  const char* v = std::getenv("PARAPLAN_GPU_COMM");
  return v && std::string(v) == "gloo";
}

}  // namespace paraplan::exec

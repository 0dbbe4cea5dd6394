#include "enums.hpp"
#include "paraplan/hardware.hpp"
#include "paraplan/parallel.hpp"
#include "paraplan/training.hpp"

namespace paraplan::planner {

using namespace detail;

const char* to_string(Precision p) { return name_of(kPrecisions, p); }
const char* to_string(GradDtype g) { return name_of(kGradDtypes, g); }
const char* to_string(Optimizer o) { return name_of(kOptimizers, o); }
const char* to_string(Recompute r) { return name_of(kRecomputes, r); }
const char* to_string(Offload o) { return name_of(kOffloads, o); }
const char* to_string(LoraBase b) { return name_of(kLoraBases, b); }
const char* to_string(Framework f) { return name_of(kFrameworks, f); }
const char* to_string(CrossEntropy c) { return name_of(kCrossEntropies, c); }
const char* to_string(PipelineSchedule s) { return name_of(kSchedules, s); }

double GpuSpec::peak_flops(Precision p) const {
  switch (p) {
    case Precision::fp32: return peak_fp32_flops;
    // CPU workers may train in bf16 (plan_rules.cpp); a CPU whose hardware data give no bf16 figure
    // (no AMX or AVX512-BF16 measured) runs its bf16 GEMMs at best at the fp32 rate (oneDNN/OpenBLAS
    // widen bf16 to fp32 there), so that is the ceiling the time model takes, not 0 (a NaN step time).
    case Precision::bf16: return is_cpu && peak_bf16_flops <= 0 ? peak_fp32_flops : peak_bf16_flops;
    case Precision::fp16: return peak_fp16_flops;
    case Precision::fp8: return peak_fp8_flops;
  }
  return 0;
}

int default_gpus_per_node(const GpuSpec& gpu, int gpus) {
  if (gpu.is_cpu) return gpus;
  if (gpu.nvlink_tray_gpus <= 0 || gpu.nvlink_domain_trays <= 0) return 8;
  const int trays = (gpus + gpu.nvlink_tray_gpus - 1) / gpu.nvlink_tray_gpus;
  if (trays <= gpu.nvlink_domain_trays) return gpus;
  int segment = gpu.nvlink_domain_trays;
  while (trays % segment != 0) --segment;
  return gpu.nvlink_tray_gpus * segment;
}

}  // namespace paraplan::planner

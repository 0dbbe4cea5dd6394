#include "paraplan/bytes_per_param.hpp"

namespace paraplan::planner {

double weight_bytes_per_param(Precision p) { return p == Precision::fp32 ? 4 : 2; }

double grad_bytes_per_param(Precision p, GradDtype g) {
  if (p == Precision::fp32) return 4;
  return g == GradDtype::fp32 ? 4 : 2;
}

double optimizer_bytes_per_param(Optimizer o) {
  switch (o) {
    case Optimizer::adam:
    case Optimizer::adamw:
      return 8;  // two fp32 moments (Kingma & Ba 2015; ZeRO's K = 12 is these 8 + the 4 B master)
    case Optimizer::sgd_momentum:
      return 4;  // one fp32 momentum buffer
    case Optimizer::sgd:
      return 0;
    case Optimizer::adam8bit:
      // Two 8-bit moments with one fp32 absmax per 2048-value block (Dettmers et al. 2021, arXiv 2110.02861 §2).
      return 2 * (1 + 4.0 / 2048);
  }
  return 8;
}

double activation_bytes(Precision p) { return p == Precision::fp32 ? 4 : 2; }

double nf4_bytes_per_param() {
  // 4-bit NF4 + double-quantised constants: 8/64 + 32/(64*256) bits (Dettmers et al. 2023, QLoRA §3).
  return (4 + 8.0 / 64 + 32.0 / (64 * 256)) / 8;
}

double frozen_linear_bytes_per_param(LoraBase b) {
  return b == LoraBase::nf4 ? nf4_bytes_per_param() : frozen_other_bytes_per_param(b);
}

double frozen_other_bytes_per_param(LoraBase b) { return b == LoraBase::fp32 ? 4.0 : 2.0; }

}  // namespace paraplan::planner

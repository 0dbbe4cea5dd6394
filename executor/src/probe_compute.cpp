// The compute probes: GEMMs over a shape grid, copies over sizes, and the fixed cost of a tiny kernel.
// GEMM FLOPs 2 M N K (one multiply-add per output element and K); a copy moves its bytes twice (read
// and write, as STREAM's Copy counts them, McCalpin 1995).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "device.hpp"
#include "probe.hpp"

namespace paraplan::exec {

namespace {

using Clock = std::chrono::steady_clock;

const char* dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kBFloat16: return "bf16";
    case at::kHalf: return "fp16";
    default: return "fp32";
  }
}

}  // namespace

double median_call_seconds(const std::function<void()>& op, const at::Device& device, const ProbeScale& s,
                           int& repeats) {
  op();  // warm-up: first-touch allocation, library initialisation
  synchronize(device);
  std::vector<double> t;
  const auto start = Clock::now();
  while (static_cast<int>(t.size()) < s.min_repeats ||
         (std::chrono::duration<double>(Clock::now() - start).count() < s.min_time_s && t.size() < 1000)) {
    const auto t0 = Clock::now();
    op();
    synchronize(device);
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  repeats = static_cast<int>(t.size());
  std::nth_element(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(t.size() / 2), t.end());
  return t[t.size() / 2];
}

void probe_compute(const at::Device& device, const std::vector<at::ScalarType>& dtypes, const ProbeScale& s,
                   const ProbeSink& out) {
  const std::vector<double> dims = s.quick ? std::vector<double>{64, 256} : std::vector<double>{64, 256, 1024, 4096, 16384};
  for (at::ScalarType dt : dtypes) {
    // Smallest first; the best rate so far predicts the next shape's time, and shapes predicted past the
    // per-call budget are left out (on a CPU the 16k cubes would take minutes).
    struct Shape {
      double m, n, k;
    };
    std::vector<Shape> grid;
    for (double m : dims)
      for (double n : dims)
        for (double k : dims) grid.push_back({m, n, k});
    std::stable_sort(grid.begin(), grid.end(), [](const Shape& a, const Shape& b) { return a.m * a.n * a.k < b.m * b.n * b.k; });
    double best_rate = 0;
    int skipped = 0;
    for (const Shape& g : grid) {
      const double flops = 2 * g.m * g.n * g.k;
      if (best_rate > 0 && flops / best_rate > s.max_call_s) {
        ++skipped;
        continue;
      }
      const auto opts = at::TensorOptions().dtype(dt).device(device);
      const at::Tensor a = at::randn({static_cast<int64_t>(g.m), static_cast<int64_t>(g.k)}, opts);
      const at::Tensor b = at::randn({static_cast<int64_t>(g.k), static_cast<int64_t>(g.n)}, opts);
      at::Tensor c = at::empty({static_cast<int64_t>(g.m), static_cast<int64_t>(g.n)}, opts);
      int reps = 0;
      const double sec = median_call_seconds([&] { at::mm_out(c, a, b); }, device, s, reps);
      best_rate = std::max(best_rate, flops / sec);
      out({"gemm", dtype_name(dt), g.m, g.n, g.k, 0, 1, sec, reps},
          fmt::format("gemm {} {}x{}x{}: {:.3g} ms, {:.1f} GFLOP/s", dtype_name(dt), g.m, g.n, g.k, 1e3 * sec,
                      flops / sec / 1e9));
    }
    if (skipped)
      out({}, fmt::format("gemm {}: {} larger shape(s) left out (predicted over {:.2g} s per call at {:.1f} GFLOP/s)",
                          dtype_name(dt), skipped, s.max_call_s, best_rate / 1e9));
  }
  // Copies: 4 KiB to 256 MiB in steps of 4 (bytes moved: read + written).
  for (double size = 4096; size <= (s.quick ? 1 << 20 : 1 << 28); size *= 4) {
    const auto opts = at::TensorOptions().dtype(at::kFloat).device(device);
    const at::Tensor src = at::ones({static_cast<int64_t>(size / 4)}, opts);
    at::Tensor dst = at::empty_like(src);
    int reps = 0;
    const double sec = median_call_seconds([&] { dst.copy_(src); }, device, s, reps);
    out({"memory", "fp32", 0, 0, 0, 2 * size, 1, sec, reps},
        fmt::format("copy {:.0f} KiB: {:.3g} ms, {:.2f} GB/s (read + written; GB = 1e9 B)", size / 1024, 1e3 * sec,
                    2 * size / sec / 1e9));
    if (sec > s.max_call_s) break;
  }
  // The fixed cost of a kernel: a 64-element add, 1000 back to back per timed call.
  {
    const auto opts = at::TensorOptions().dtype(at::kFloat).device(device);
    const at::Tensor a = at::ones({64}, opts), b = at::ones({64}, opts);
    at::Tensor c = at::empty({64}, opts);
    constexpr int kBatch = 1000;
    int reps = 0;
    const double sec = median_call_seconds(
                           [&] {
                             for (int i = 0; i < kBatch; ++i) at::add_out(c, a, b);
                           },
                           device, s, reps) /
                       kBatch;
    out({"kernel", "fp32", 0, 0, 0, 3 * 64 * 4, 1, sec, reps * kBatch},
        fmt::format("kernel (64-element add, {} back to back): {:.3g} us each", kBatch, 1e6 * sec));
  }
}

}  // namespace paraplan::exec

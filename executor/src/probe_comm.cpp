// The collective probes, as nccl-tests measures them (NVIDIA/nccl-tests doc/PERFORMANCE.md): size is
// the whole buffer (all-gather: the gathered output; reduce-scatter: the input), algbw = size / time,
// busbw = algbw x 2(n-1)/n for all-reduce, (n-1)/n for all-gather and reduce-scatter, 1 for send/recv.
#include <fmt/format.h>

#include "device.hpp"
#include "probe.hpp"

namespace paraplan::exec {

namespace {

// Every rank runs the same operation the same number of times: rank 0 decides the count and tells the
// others (a broadcast), so that no rank waits in a collective the others have stopped calling.
double timed_collective(Communicator& comm, const at::Device& device, const ProbeScale& s,
                        const std::function<void()>& op, int& repeats) {
  comm.barrier();
  op();  // warm-up
  synchronize(device);
  comm.barrier();
  // Rank 0 times a first batch and chooses the repeats that fill min_time_s.
  at::Tensor count = at::zeros({1}, at::TensorOptions().dtype(at::kFloat).device(device));
  std::vector<double> t;
  for (int i = 0; i < s.min_repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    op();
    synchronize(device);
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  if (comm.rank() == 0) {
    std::vector<double> sorted = t;
    std::sort(sorted.begin(), sorted.end());
    const double each = std::max(sorted[sorted.size() / 2], 1e-7);
    count.fill_(std::min(200.0, std::max(0.0, std::ceil(s.min_time_s / each) - s.min_repeats)));
  }
  comm.broadcast(count, 0);
  const int more = static_cast<int>(count.to(at::kCPU).item<float>());
  for (int i = 0; i < more; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    op();
    synchronize(device);
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  repeats = static_cast<int>(t.size());
  std::nth_element(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(t.size() / 2), t.end());
  return t[t.size() / 2];
}

}  // namespace

void probe_collectives(Communicator& comm, const at::Device& device, const ProbeScale& s, const ProbeSink& out) {
  const int n = comm.size(), r = comm.rank();
  const double frac = static_cast<double>(n - 1) / n;
  // Bytes: 16 MiB (CPU budget); 8 MiB in a quick probe: the smaller sizes run from the caches, faster
  // than the megabytes of a layer's gradients or parameters a run moves (2 ranks' all-gather: 4.4 GB/s of
  // bus bandwidth at 1 MiB, 2.6 at 8 MiB on the development machine).
  const double top = s.quick ? 1 << 23 : 1 << 24;
  for (double size = 256; size <= top; size *= 8) {
    const int64_t elems = static_cast<int64_t>(size / 4) / n * n;  // n equal chunks of fp32
    const auto opts = at::TensorOptions().dtype(at::kFloat).device(device);
    at::Tensor buf = at::ones({elems}, opts), chunk = at::empty({elems / n}, opts), in = at::empty({elems}, opts);
    const double bytes = 4.0 * static_cast<double>(elems);
    struct Case {
      const char* kind;
      double bus;
      std::function<void()> op;
    };
    const Case cases[] = {
        {"all_reduce", 2 * frac, [&] { comm.allreduce(buf); }},
        {"all_gather", frac, [&] { comm.allgather(buf); }},
        {"reduce_scatter", frac, [&] { comm.reduce_scatter(buf, chunk); }},
        {"send_recv", 1, [&] { comm.exchange(buf, (r + 1) % n, in, (r + n - 1) % n); }},
    };
    for (const Case& c : cases) {
      int reps = 0;
      const double sec = timed_collective(comm, device, s, c.op, reps);
      if (r != 0) continue;
      const double algbw = bytes / sec;
      out({c.kind, "fp32", 0, 0, 0, bytes, n, sec, reps},
          fmt::format("{} {:.0f} B over {} ranks: {:.3g} ms, algbw {:.3g} GB/s, busbw {:.3g} GB/s (GB = 1e9 B)", c.kind,
                      bytes, n, 1e3 * sec, algbw / 1e9, algbw * c.bus / 1e9));
    }
  }
}

}  // namespace paraplan::exec

// The counting CPU allocator (libtorch-notes.md §2: c10::SetCPUAllocator at priority 1 replaces the
// default, which registers at 0; storages created before keep their own deleter).
#include "paraplan/exec/memory_meter.hpp"

#include <c10/core/CPUAllocator.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

namespace paraplan::exec {

namespace {

thread_local MemCategory t_category = MemCategory::activations;

struct Counters {
  std::mutex mu;
  MemorySnapshot s;
  int64_t window_peak = 0;
};
Counters& counters() {
  static Counters c;
  return c;
}

// A 64-byte header before the data keeps the size and the category; the data stays 64-byte aligned
// as ATen's own allocator aligns it (c10/core/alignment.h: gAlignment = 64).
constexpr size_t kHeader = 64;

// PARAPLAN_MEMTRACE=1: every allocation and free on stderr (bytes, category, the total after it),
// with the markers of memory_mark(), to derive the planner's executor profile tensor by tensor.
const bool g_trace = std::getenv("PARAPLAN_MEMTRACE") != nullptr;

void account(int64_t bytes, MemCategory c) {
  Counters& k = counters();
  std::lock_guard<std::mutex> lock(k.mu);
  if (g_trace) std::fprintf(stderr, "mem %+lld %s %lld\n", static_cast<long long>(bytes), to_string(c),
                            static_cast<long long>(k.s.current_total + bytes));
  k.s.current[static_cast<int>(c)] += bytes;
  k.s.current_total += bytes;
  if (k.s.current_total > k.window_peak) k.window_peak = k.s.current_total;
  if (k.s.current_total > k.s.peak_total) {
    k.s.peak_total = k.s.current_total;
    k.s.at_peak = k.s.current;
  }
}

void counting_free(void* data) {
  if (!data) return;
  char* base = static_cast<char*>(data) - kHeader;
  int64_t n;
  std::memcpy(&n, base, sizeof n);
  const auto c = static_cast<MemCategory>(base[sizeof n]);
  account(-n, c);
  std::free(base);
}

struct CountingAllocator final : c10::Allocator {
  c10::DataPtr make(size_t n) const {
    if (n == 0) return {nullptr, nullptr, &counting_free, c10::Device(c10::DeviceType::CPU)};
    void* base = nullptr;
    if (posix_memalign(&base, 64, n + kHeader) != 0) throw std::bad_alloc();
    const auto bytes = static_cast<int64_t>(n);
    std::memcpy(base, &bytes, sizeof bytes);
    static_cast<char*>(base)[sizeof bytes] = static_cast<char>(t_category);
    account(bytes, t_category);
    void* data = static_cast<char*>(base) + kHeader;
    return {data, data, &counting_free, c10::Device(c10::DeviceType::CPU)};
  }
  // LibTorch 1.13 declares `allocate(size_t) const`; 2.x declares a non-const `allocate` and a pure
  // `copy_data`. Declaring all of them without `override` compiles on both (libtorch-notes.md §2).
  c10::DataPtr allocate(size_t n) const { return make(n); }
  c10::DataPtr allocate(size_t n) { return make(n); }
  void copy_data(void* dst, const void* src, std::size_t count) const { std::memcpy(dst, src, count); }
  c10::DeleterFnPtr raw_deleter() const override { return &counting_free; }
};

CountingAllocator g_allocator;
bool g_installed = false;

}  // namespace

const char* to_string(MemCategory c) {
  switch (c) {
    case MemCategory::weights: return "weights";
    case MemCategory::gradients: return "gradients";
    case MemCategory::master: return "master";
    case MemCategory::optimizer: return "optimizer";
    case MemCategory::activations: return "activations";
    case MemCategory::buffers: return "buffers";
    case MemCategory::other: return "other";
    case MemCategory::count: break;
  }
  return "?";
}

bool install_counting_allocator() {
  if (g_installed) return true;
  c10::SetCPUAllocator(&g_allocator, /*priority=*/1);
  g_installed = c10::GetCPUAllocator() == &g_allocator;
  return g_installed;
}

bool counting_allocator_installed() { return g_installed; }

MemorySnapshot memory_snapshot() {
  Counters& k = counters();
  std::lock_guard<std::mutex> lock(k.mu);
  return k.s;
}

void reset_memory_peak() {
  Counters& k = counters();
  std::lock_guard<std::mutex> lock(k.mu);
  k.s.peak_total = k.s.current_total;
  k.s.at_peak = k.s.current;
}

void memory_mark(const char* what) {
  if (g_trace) std::fprintf(stderr, "mark %s\n", what);
}

int64_t window_peak() {
  Counters& k = counters();
  std::lock_guard<std::mutex> lock(k.mu);
  return k.window_peak;
}

void reset_window_peak() {
  Counters& k = counters();
  std::lock_guard<std::mutex> lock(k.mu);
  k.window_peak = k.s.current_total;
}

CategoryScope::CategoryScope(MemCategory c) : previous_(t_category) { t_category = c; }
CategoryScope::~CategoryScope() { t_category = previous_; }

}  // namespace paraplan::exec

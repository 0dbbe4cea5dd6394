#pragma once
// Exact CPU memory measurement: a counting allocator installed as LibTorch's CPU allocator sees every
// ATen storage (libtorch-notes.md §2) and attributes it to the category active on the allocating
// thread. The training code opens a CategoryScope around what it allocates (weights, gradients,
// optimizer states, communication buffers); everything else, the autograd graph's saved tensors and
// the backward's temporaries, is activations. At every new total peak the per-category bytes are
// copied, so the breakdown of the peak is the state at that instant, not a sum of separate maxima.
#include <array>
#include <cstdint>

namespace paraplan::exec {

enum class MemCategory : uint8_t { weights, gradients, master, optimizer, activations, buffers, other, count };
constexpr int kMemCategories = static_cast<int>(MemCategory::count);
const char* to_string(MemCategory c);

struct MemorySnapshot {
  std::array<int64_t, kMemCategories> current{};  // bytes alive now, by category
  std::array<int64_t, kMemCategories> at_peak{};  // bytes alive at the total peak, by category
  int64_t current_total = 0;
  int64_t peak_total = 0;
};

// Installs the counting allocator (once; before the first tensor is created). Returns false when a
// CPU allocator could not be replaced (then snapshots stay zero).
bool install_counting_allocator();
bool counting_allocator_installed();
MemorySnapshot memory_snapshot();
void reset_memory_peak();  // the peak restarts from the bytes alive now
// A second peak, restarted independently of the first (the pipeline runner finds the op of a step's
// peak with it).
int64_t window_peak();
// With PARAPLAN_MEMTRACE set, writes a marker into the allocation trace on stderr.
void memory_mark(const char* what);
void reset_window_peak();

// Attributes allocations made by this thread while it lives.
class CategoryScope {
 public:
  explicit CategoryScope(MemCategory c);
  ~CategoryScope();
  CategoryScope(const CategoryScope&) = delete;
  CategoryScope& operator=(const CategoryScope&) = delete;

 private:
  MemCategory previous_;
};

}  // namespace paraplan::exec

#pragma once
// A fixed-capacity vector that lives inline: the workload is rebuilt millions of times in the
// search, and heap allocation would dominate its cost. The storage is left uninitialised and a copy
// moves only the elements in use: zeroing and copying the full capacity of a workload's op lists
// (10 KB) cost a quarter of a memory estimate (perf on bench_planner).
#include <cstddef>
#include <cstring>
#include <new>
#include <stdexcept>
#include <type_traits>

namespace paraplan::planner {

template <class T, size_t N>
class InlineVec {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>,
                "InlineVec copies its elements as bytes");

 public:
  InlineVec() {}  // user-provided: value-initialising an InlineVec does not zero its storage
  InlineVec(const InlineVec& o) : size_(o.size_) { std::memcpy(storage_, o.storage_, size_ * sizeof(T)); }
  InlineVec& operator=(const InlineVec& o) {
    size_ = o.size_;
    std::memmove(storage_, o.storage_, size_ * sizeof(T));
    return *this;
  }

  T& push_back(const T& v) {
    // Checked in every build: an overflow would write over whatever follows the vector.
    if (size_ == N) throw std::length_error("paraplan: InlineVec capacity exceeded (a workload block has too many ops or comms)");
    return *::new (storage_ + size_++ * sizeof(T)) T(v);
  }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void clear() { size_ = 0; }
  const T* begin() const { return data(); }
  const T* end() const { return data() + size_; }
  T* begin() { return data(); }
  T* end() { return data() + size_; }
  const T& operator[](size_t i) const { return data()[i]; }
  T& operator[](size_t i) { return data()[i]; }

 private:
  T* data() { return std::launder(reinterpret_cast<T*>(storage_)); }
  const T* data() const { return std::launder(reinterpret_cast<const T*>(storage_)); }

  alignas(T) unsigned char storage_[N * sizeof(T)];
  size_t size_ = 0;
};

}  // namespace paraplan::planner

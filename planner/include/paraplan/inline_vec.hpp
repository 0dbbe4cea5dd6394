#pragma once
// A fixed-capacity vector that lives inline: the workload is rebuilt millions of times in the
// search, and heap allocation would dominate its cost.
#include <array>
#include <cassert>
#include <cstddef>

namespace paraplan::planner {

template <class T, size_t N>
class InlineVec {
 public:
  T& push_back(const T& v) {
    assert(size_ < N);
    data_[size_] = v;
    return data_[size_++];
  }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void clear() { size_ = 0; }
  const T* begin() const { return data_.data(); }
  const T* end() const { return data_.data() + size_; }
  T* begin() { return data_.data(); }
  T* end() { return data_.data() + size_; }
  const T& operator[](size_t i) const { return data_[i]; }
  T& operator[](size_t i) { return data_[i]; }

 private:
  std::array<T, N> data_{};
  size_t size_ = 0;
};

}  // namespace paraplan::planner

#include "paraplan/rank_grid.hpp"

#include <algorithm>
#include <stdexcept>

namespace paraplan::planner {

const char* to_string(Axis a) {
  switch (a) {
    case Axis::tp: return "tp";
    case Axis::cp: return "cp";
    case Axis::ep: return "ep";
    case Axis::dp: return "dp";
    case Axis::pp: return "pp";
    case Axis::dp_cp: return "dp_cp";
  }
  return "?";
}

int RankGrid::slot(Axis a) {
  switch (a) {
    case Axis::tp: return 0;
    case Axis::cp: return 1;
    case Axis::dp: return 2;
    case Axis::pp: return 3;
    default: break;
  }
  throw std::invalid_argument(std::string("rank grid: ") + to_string(a) + " is not a mesh axis");
}

RankGrid::RankGrid(const ParallelPlan& p, const std::vector<Axis>& mesh_order)
    : dims_{p.tp, p.cp, p.dp, p.pp}, order_(mesh_order), ep_(p.ep), world_(p.gpus()) {
  long long stride = 1;
  for (Axis a : order_) {
    strides_[slot(a)] = stride;
    stride *= dims_[slot(a)];
  }
}

int RankGrid::size(Axis a) const {
  switch (a) {
    case Axis::ep: return ep_;
    case Axis::dp_cp: return dims_[slot(Axis::dp)] * dims_[slot(Axis::cp)];
    default: return dims_[slot(a)];
  }
}

int RankGrid::block_position(int rank) const {
  const bool cp_inner = strides_[slot(Axis::cp)] < strides_[slot(Axis::dp)];
  const Axis inner = cp_inner ? Axis::cp : Axis::dp, outer = cp_inner ? Axis::dp : Axis::cp;
  return coord(inner, rank) + dims_[slot(inner)] * coord(outer, rank);
}

int RankGrid::block_rank(int base, int position) const {
  const bool cp_inner = strides_[slot(Axis::cp)] < strides_[slot(Axis::dp)];
  const Axis inner = cp_inner ? Axis::cp : Axis::dp, outer = cp_inner ? Axis::dp : Axis::cp;
  const int n = dims_[slot(inner)];
  return static_cast<int>(base + (position % n) * strides_[slot(inner)] + (position / n) * strides_[slot(outer)]);
}

std::vector<int> RankGrid::group(Axis a, int rank) const {
  if (rank < 0 || rank >= world_)
    throw std::out_of_range("rank " + std::to_string(rank) + " outside a world of " + std::to_string(world_));
  std::vector<int> out;
  if (a == Axis::dp_cp || a == Axis::ep) {
    const int base = static_cast<int>(rank - coord(Axis::cp, rank) * strides_[slot(Axis::cp)] -
                                      coord(Axis::dp, rank) * strides_[slot(Axis::dp)]);
    const int first = a == Axis::ep ? block_position(rank) / ep_ * ep_ : 0;
    for (int i = 0; i < size(a); ++i) out.push_back(block_rank(base, first + i));
    return out;
  }
  const int k = slot(a);
  const int base = static_cast<int>(rank - coord(a, rank) * strides_[k]);
  for (int i = 0; i < dims_[k]; ++i) out.push_back(static_cast<int>(base + i * strides_[k]));
  return out;
}

int RankGrid::index_in_group(Axis a, int rank) const {
  if (a == Axis::dp_cp) return block_position(rank);
  if (a == Axis::ep) return block_position(rank) % ep_;
  return coord(a, rank);
}

int RankGrid::group_id(Axis a, int rank) const {
  const std::vector<int> g = group(a, rank);
  int smallest = g.front();
  for (int r : g) smallest = std::min(smallest, r);
  return smallest;
}

long long RankGrid::span(Axis a) const {
  if (a == Axis::dp_cp || a == Axis::ep) {
    const int last = size(a) - 1;
    return block_rank(0, last);  // rank 0's group ends at its last member (strides are positive)
  }
  return strides_[slot(a)] * (dims_[slot(a)] - 1);
}

int RankGrid::members_below(Axis a, long long n) const {
  auto rank_at = [&](int position) -> long long {
    if (a == Axis::dp_cp || a == Axis::ep) return block_rank(0, position);
    return strides_[slot(a)] * position;
  };
  int lo = 0, hi = size(a);  // members at positions [0, lo) are below n; [hi, size) are not
  while (lo < hi) {
    const int mid = lo + (hi - lo) / 2;
    if (rank_at(mid) < n) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

std::string RankGrid::describe() const {
  std::string mesh;
  for (Axis a : order_) mesh += (mesh.empty() ? "" : ", ") + std::string(to_string(a));
  return "tp=" + std::to_string(dims_[0]) + " cp=" + std::to_string(dims_[1]) + " dp=" + std::to_string(dims_[2]) +
         " pp=" + std::to_string(dims_[3]) + (ep_ > 1 ? " ep=" + std::to_string(ep_) : "") + " (mesh " + mesh + ")";
}

}  // namespace paraplan::planner

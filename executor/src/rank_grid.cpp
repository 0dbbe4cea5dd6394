#include "paraplan/exec/rank_grid.hpp"

#include <stdexcept>

namespace paraplan::exec {

const char* to_string(Axis a) {
  switch (a) {
    case Axis::dp: return "dp";
    case Axis::pp: return "pp";
    case Axis::cp: return "cp";
    case Axis::tp: return "tp";
  }
  return "?";
}

std::array<int, 4> RankGrid::coords(int rank) const {
  if (rank < 0 || rank >= world())
    throw std::out_of_range("rank " + std::to_string(rank) + " outside a world of " + std::to_string(world()));
  std::array<int, 4> c{};
  for (int i = 3; i >= 0; --i) {  // row-major: the last axis (tp) varies fastest
    c[i] = rank % dims[i];
    rank /= dims[i];
  }
  return c;
}

int RankGrid::rank_of(const std::array<int, 4>& c) const {
  int r = 0;
  for (int i = 0; i < 4; ++i) r = r * dims[i] + c[i];
  return r;
}

std::vector<int> RankGrid::group(Axis a, int rank) const {
  std::array<int, 4> c = coords(rank);
  std::vector<int> out;
  for (int i = 0; i < size(a); ++i) {
    c[static_cast<int>(a)] = i;
    out.push_back(rank_of(c));
  }
  return out;
}

int RankGrid::group_index(Axis a, int rank) const {
  // The group is identified by the other three coordinates, numbered row-major.
  const std::array<int, 4> c = coords(rank);
  int idx = 0;
  for (int i = 0; i < 4; ++i)
    if (i != static_cast<int>(a)) idx = idx * dims[i] + c[i];
  return idx;
}

std::string RankGrid::describe() const {
  return "dp=" + std::to_string(dims[0]) + " pp=" + std::to_string(dims[1]) + " cp=" + std::to_string(dims[2]) +
         " tp=" + std::to_string(dims[3]);
}

}  // namespace paraplan::exec

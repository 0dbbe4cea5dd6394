#pragma once
// The rank grid: world ranks laid out as arange(world).view(dp, pp, cp, tp) (picotron's
// process_group_manager.py idea), tp innermost. A rank's group along an axis is the ranks that differ
// from it only in that coordinate. No LibTorch: the communicator layer builds one process group per
// axis from these lists.
#include <array>
#include <string>
#include <vector>

namespace paraplan::exec {

enum class Axis { dp = 0, pp = 1, cp = 2, tp = 3 };
const char* to_string(Axis a);
inline constexpr Axis kAxes[] = {Axis::dp, Axis::pp, Axis::cp, Axis::tp};

struct RankGrid {
  std::array<int, 4> dims{1, 1, 1, 1};  // dp, pp, cp, tp

  RankGrid() = default;
  RankGrid(int dp, int pp, int cp, int tp) : dims{dp, pp, cp, tp} {}
  int size(Axis a) const { return dims[static_cast<int>(a)]; }
  int world() const { return dims[0] * dims[1] * dims[2] * dims[3]; }
  std::array<int, 4> coords(int rank) const;  // (dp, pp, cp, tp) coordinates of a world rank
  int rank_of(const std::array<int, 4>& c) const;
  std::vector<int> group(Axis a, int rank) const;  // world ranks of `rank`'s group along a, in axis order
  int group_index(Axis a, int rank) const;         // which of the world/size(a) groups along a holds `rank`
  int index_in_group(Axis a, int rank) const { return coords(rank)[static_cast<int>(a)]; }
  std::string describe() const;                    // "dp=2 pp=1 cp=1 tp=2"
};

}  // namespace paraplan::exec

#pragma once
// The rank grid: where each world rank sits on the parallel axes, from the plan's degrees and
// cluster.mesh_order (innermost — consecutive ranks — first). One grid for the planner's communication
// model (does a group span nodes?) and the executor's process groups (which ranks talk to which).
//   rank = sum over the mesh axes of coord[a] * stride[a]; an axis' stride is the product of the sizes
//   of the axes placed inside it. The default order tp, cp, dp, pp is Megatron-Core's "tp-cp-ep-dp-pp"
//   (parallel_state.py RankGenerator) and torchtitan's mesh (pp, dp, cp, tp outermost first).
// Groups: a mesh axis' group is the ranks that differ from one only in that coordinate; dp_cp (the
// gradient group) varies both dp and cp; ep takes ep consecutive ranks of the cp x dp block, enumerated
// with the inner of cp and dp first. Group members are listed in group-rank order.
#include <array>
#include <string>
#include <vector>

#include "paraplan/plan.hpp"

namespace paraplan::planner {

class RankGrid {
 public:
  RankGrid() = default;  // a world of one rank
  // `mesh_order` lists tp, cp, dp and pp once each, innermost first.
  RankGrid(const ParallelPlan& parallel, const std::vector<Axis>& mesh_order);
  explicit RankGrid(const Plan& plan) : RankGrid(plan.parallel, plan.cluster.mesh_order) {}

  int world() const { return world_; }
  int size(Axis a) const;                           // ranks in one group along a
  std::vector<int> group(Axis a, int rank) const;   // world ranks of rank's group along a
  int index_in_group(Axis a, int rank) const;       // rank's position in group(a, rank)
  int group_id(Axis a, int rank) const;             // the group's smallest world rank: names the group
  // Largest rank offset inside a group along a (all groups of an axis are translates of rank 0's): the
  // group stays inside one node iff this is below gpus_per_node, as nodes hold consecutive ranks.
  long long span(Axis a) const;
  // Members of rank 0's group below world rank n (with n = gpus_per_node: how many of its ranks share
  // node 0, whose NICs the group crosses with). Members ascend with their group position, so this is a
  // binary search, not a walk over a group of thousands.
  int members_below(Axis a, long long n) const;
  std::string describe() const;                     // "tp=2 cp=1 dp=2 pp=1 (mesh tp, cp, dp, pp)"

 private:
  static int slot(Axis mesh_axis);                  // index of a mesh axis in dims_ / strides_
  int coord(Axis mesh_axis, int rank) const { return rank / strides_[slot(mesh_axis)] % dims_[slot(mesh_axis)]; }
  // The cp x dp block, inner axis first: position of a rank in it, and the rank at a position.
  int block_position(int rank) const;
  int block_rank(int base, int position) const;     // base: a rank with the cp and dp coordinates zeroed
  std::array<int, 4> dims_{1, 1, 1, 1};             // tp, cp, dp, pp
  std::array<long long, 4> strides_{1, 1, 1, 1};
  std::vector<Axis> order_{Axis::tp, Axis::cp, Axis::dp, Axis::pp};
  int ep_ = 1;
  int world_ = 1;
};

}  // namespace paraplan::planner

// The rank grid (rank_grid.hpp): rank = sum of coord x stride over the mesh axes, innermost first.
// Expected groups are written out by hand for small grids; the spans reproduce the stride formulas the
// communication model used before the grid existed (tests/planner/test_time.cpp keeps their cases).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "paraplan/rank_grid.hpp"

using namespace paraplan::planner;

namespace {

ParallelPlan degrees(int dp, int tp, int pp, int cp, int ep = 1) {
  ParallelPlan p;
  std::tie(p.dp, p.tp, p.pp, p.cp, p.ep) = std::tie(dp, tp, pp, cp, ep);
  return p;
}

}  // namespace

TEST(RankGrid, DefaultMeshPutsTpInnermostThenCpDpPp) {
  // tp 2, cp 2, dp 2, pp 1 in the order tp, cp, dp, pp: rank = t + 2c + 4d, as
  // torch.arange(8).view(dp=2, cp=2, tp=2) (picotron's process_group_manager layout).
  const RankGrid g(degrees(2, 2, 1, 2), {Axis::tp, Axis::cp, Axis::dp, Axis::pp});
  EXPECT_EQ(g.world(), 8);
  EXPECT_EQ(g.group(Axis::tp, 5), (std::vector<int>{4, 5}));   // 5 = 1 + 0 + 4: t=1, c=0, d=1
  EXPECT_EQ(g.group(Axis::cp, 5), (std::vector<int>{5, 7}));
  EXPECT_EQ(g.group(Axis::dp, 5), (std::vector<int>{1, 5}));
  EXPECT_EQ(g.group(Axis::pp, 5), (std::vector<int>{5}));
  // The gradient group varies cp (inner) and dp: {1, 3, 5, 7} for t = 1, in cp-inner order.
  EXPECT_EQ(g.group(Axis::dp_cp, 5), (std::vector<int>{1, 3, 5, 7}));
  EXPECT_EQ(g.index_in_group(Axis::dp_cp, 5), 2);
  EXPECT_EQ(g.index_in_group(Axis::tp, 5), 1);
  EXPECT_EQ(g.group_id(Axis::dp, 5), 1);
}

TEST(RankGrid, ExpertGroupsFoldTheCpDpBlockInnerFirst) {
  // cp 2, dp 4, ep 4, tp 1, mesh tp, cp, dp, pp: the cp x dp block is ranks 0..7 with cp inner
  // (position = c + 2d = rank); ep groups are 4 consecutive positions: {0,1,2,3} and {4,5,6,7}.
  const RankGrid g(degrees(4, 1, 1, 2, 4), {Axis::tp, Axis::cp, Axis::dp, Axis::pp});
  EXPECT_EQ(g.group(Axis::ep, 6), (std::vector<int>{4, 5, 6, 7}));
  EXPECT_EQ(g.index_in_group(Axis::ep, 6), 2);
  EXPECT_EQ(g.span(Axis::ep), 3);
  // dp inner (mesh tp, dp, cp, pp): rank = d + 4c; positions d + 4c as well -> the same ep groups.
  const RankGrid h(degrees(4, 1, 1, 2, 4), {Axis::tp, Axis::dp, Axis::cp, Axis::pp});
  EXPECT_EQ(h.group(Axis::ep, 6), (std::vector<int>{4, 5, 6, 7}));
  // With tp 2 inside, ranks are t + 2(c + 2d): the t = 1 ranks 1, 3, 5, 7 sit at block positions 0..3
  // and 9, 11, 13, 15 at 4..7, so rank 9 (t=1, c=0, d=2) is in {9, 11, 13, 15}.
  const RankGrid k(degrees(4, 2, 1, 2, 4), {Axis::tp, Axis::cp, Axis::dp, Axis::pp});
  EXPECT_EQ(k.group(Axis::ep, 9), (std::vector<int>{9, 11, 13, 15}));
  EXPECT_EQ(k.span(Axis::ep), 6);  // rank 0's group {0, 2, 4, 6}
}

TEST(RankGrid, EveryRankIsInOneGroupPerAxisForEveryMeshOrder) {
  const std::vector<std::vector<Axis>> orders{{Axis::tp, Axis::cp, Axis::dp, Axis::pp},
                                              {Axis::tp, Axis::cp, Axis::pp, Axis::dp},
                                              {Axis::dp, Axis::tp, Axis::cp, Axis::pp},
                                              {Axis::pp, Axis::dp, Axis::cp, Axis::tp}};
  const ParallelPlan p = degrees(2, 2, 3, 2, 2);  // 24 ranks
  for (const auto& order : orders) {
    const RankGrid g(p, order);
    for (Axis a : {Axis::tp, Axis::cp, Axis::ep, Axis::dp, Axis::pp, Axis::dp_cp}) {
      std::map<int, std::vector<int>> groups;
      for (int r = 0; r < g.world(); ++r) {
        const auto members = g.group(a, r);
        ASSERT_EQ(static_cast<int>(members.size()), g.size(a));
        EXPECT_EQ(members.at(static_cast<size_t>(g.index_in_group(a, r))), r);
        groups[g.group_id(a, r)] = members;
      }
      EXPECT_EQ(static_cast<int>(groups.size()), g.world() / g.size(a)) << to_string(a);
      std::set<int> all;
      for (const auto& [id, members] : groups) all.insert(members.begin(), members.end());
      EXPECT_EQ(static_cast<int>(all.size()), g.world()) << to_string(a);
      // The span is the largest offset inside rank 0's group.
      const auto g0 = g.group(a, 0);
      EXPECT_EQ(g.span(a), *std::max_element(g0.begin(), g0.end())) << to_string(a);
    }
  }
}

TEST(RankGrid, NonMeshAxesAreRefusedAsMeshOrder) {
  EXPECT_THROW(RankGrid(degrees(2, 1, 1, 1), {Axis::ep, Axis::cp, Axis::dp, Axis::pp}), std::invalid_argument);
  const RankGrid two(degrees(2, 1, 1, 1), {Axis::tp, Axis::cp, Axis::dp, Axis::pp});
  EXPECT_THROW(two.group(Axis::dp, 2), std::out_of_range);
}

// How many of rank 0's group sit in node 0 (ranks below 8), by hand: dp 2, tp 2, pp 4, cp 2 in the
// default mesh (strides tp 1, cp 2, dp 4, pp 8). dp: 0, 4 -> 2; pp: 0, 8, 16, 24 -> 1; tp: 0, 1 -> 2;
// dp_cp (cp inner): 0, 2, 4, 6 -> 4. And for every axis of every mesh order, the count equals a walk
// over the group.
TEST(RankGrid, MembersBelowANodeBoundary) {
  const RankGrid g(degrees(2, 2, 4, 2), {Axis::tp, Axis::cp, Axis::dp, Axis::pp});
  EXPECT_EQ(g.members_below(Axis::dp, 8), 2);
  EXPECT_EQ(g.members_below(Axis::pp, 8), 1);
  EXPECT_EQ(g.members_below(Axis::tp, 8), 2);
  EXPECT_EQ(g.members_below(Axis::dp_cp, 8), 4);
  std::vector<Axis> order{Axis::tp, Axis::cp, Axis::dp, Axis::pp};
  std::sort(order.begin(), order.end());
  do {
    const RankGrid h(degrees(2, 2, 4, 2, 4), order);
    for (Axis a : {Axis::tp, Axis::cp, Axis::dp, Axis::pp, Axis::dp_cp, Axis::ep})
      for (long long n : {1LL, 3LL, 8LL, 16LL, 64LL}) {
        int walk = 0;
        for (int r : h.group(a, 0)) walk += r < n;
        EXPECT_EQ(h.members_below(a, n), walk) << to_string(a) << " below " << n << " in " << h.describe();
      }
  } while (std::next_permutation(order.begin(), order.end()));
}

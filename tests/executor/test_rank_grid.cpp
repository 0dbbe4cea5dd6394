// The rank grid as torch.arange(world).view(dp, pp, cp, tp) lays it out (picotron), and the launch
// environment contract.
#include <gtest/gtest.h>

#include <map>

#include "paraplan/exec/launch_env.hpp"
#include "paraplan/exec/rank_grid.hpp"

using namespace paraplan::exec;

TEST(RankGrid, MatchesArangeView) {
  // arange(8).view(2, 1, 2, 2): element [d, p, c, t] = 4d + 2c + t.
  const RankGrid g(2, 1, 2, 2);
  EXPECT_EQ(g.world(), 8);
  EXPECT_EQ(g.coords(5), (std::array<int, 4>{1, 0, 0, 1}));
  EXPECT_EQ(g.rank_of({1, 0, 1, 1}), 7);
  EXPECT_EQ(g.group(Axis::tp, 5), (std::vector<int>{4, 5}));
  EXPECT_EQ(g.group(Axis::cp, 5), (std::vector<int>{5, 7}));
  EXPECT_EQ(g.group(Axis::dp, 5), (std::vector<int>{1, 5}));
  EXPECT_EQ(g.group(Axis::pp, 5), (std::vector<int>{5}));
  // Every rank is in exactly one group per axis, and group_index numbers the groups 0..world/size-1.
  for (Axis a : kAxes) {
    std::map<int, std::vector<int>> groups;
    for (int r = 0; r < g.world(); ++r) groups[g.group_index(a, r)].push_back(r);
    EXPECT_EQ(static_cast<int>(groups.size()), g.world() / g.size(a));
    for (const auto& [idx, members] : groups) EXPECT_EQ(members, g.group(a, members[0]));
  }
  EXPECT_THROW(g.coords(8), std::out_of_range);
}

TEST(LaunchEnv, ReadsTorchrunVariables) {
  std::map<std::string, std::string> env{{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "node0"},
                                         {"MASTER_PORT", "29555"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"}};
  auto get = [&](const char* k) -> const char* {
    auto it = env.find(k);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  const auto e = launch_env_from(get);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->rank, 3);
  EXPECT_EQ(e->world_size, 4);
  EXPECT_EQ(e->local_rank, 1);
  EXPECT_EQ(e->master_addr, "node0");
  EXPECT_EQ(e->master_port, 29555);
  EXPECT_TRUE(e->agent_store);
  env.erase("MASTER_ADDR");
  try {
    launch_env_from(get);
    FAIL() << "no MASTER_ADDR was accepted";
  } catch (const LaunchEnvError& x) {
    EXPECT_STREQ(x.what(), "MASTER_ADDR is not set (the host of rank 0's store)");
  }
  env["MASTER_ADDR"] = "node0";
  env["RANK"] = "4";
  try {
    launch_env_from(get);
    FAIL();
  } catch (const LaunchEnvError& x) {
    EXPECT_STREQ(x.what(), "RANK = \"4\": must be an integer in [0, 3]");
  }
  EXPECT_FALSE(launch_env_from([](const char*) -> const char* { return nullptr; }));
}

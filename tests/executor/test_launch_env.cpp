// The launch environment contract (the rank grid is the planner's: tests/planner/test_rank_grid.cpp).
#include <gtest/gtest.h>

#include <map>

#include "paraplan/exec/launch_env.hpp"

using namespace paraplan::exec;

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

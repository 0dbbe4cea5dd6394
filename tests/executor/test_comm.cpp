// The gloo communicator across real processes: 2 ranks, and 4 ranks laid out as a (dp 2, tp 2) grid,
// every collective on every group checked by comm_probe against values derived by hand.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "process_util.hpp"

using paraplan::test::free_port;
using paraplan::test::shell;

namespace {

// Starts `n` probes as ranks 0..n-1 and returns "0 0 ..." when every one exited with 0.
std::string run_probes(int n, const std::string& grid, const std::string& mesh = "tp,cp,dp,pp") {
  const std::string port = std::to_string(free_port());
  std::string cmd = "(";
  for (int r = 0; r < n; ++r)
    cmd += "RANK=" + std::to_string(r) + " WORLD_SIZE=" + std::to_string(n) + " MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
           port + " PROBE_GRID=" + grid + " PROBE_MESH=" + mesh + " " + COMM_PROBE + " & p" + std::to_string(r) + "=$!; ";
  cmd += "codes=; for p in";
  for (int r = 0; r < n; ++r) cmd += " $p" + std::to_string(r);
  cmd += "; do wait $p; codes=\"$codes $?\"; done; echo \"exit codes:$codes\")";
  return shell(cmd).out;
}

}  // namespace

TEST(GlooCommunicator, TwoRanks) {
  const std::string out = run_probes(2, "2,1,1,1");
  EXPECT_NE(out.find("exit codes: 0 0"), std::string::npos) << out;
}

TEST(GlooCommunicator, FourRanksAsDataAndTensorParallelGroups) {
  const std::string out = run_probes(4, "2,1,1,2");
  EXPECT_NE(out.find("exit codes: 0 0 0 0"), std::string::npos) << out;
}

// The executor's process groups are the planner's rank grid for several mesh orders (issue 11): dp 2 x
// tp 2 with tp inner and with dp inner, and pp 2 x tp 2 with pp inner and outer.
TEST(GlooCommunicator, GroupsAreThePlannersRankGridForSeveralMeshOrders) {
  for (const auto& [grid, mesh] : std::vector<std::pair<std::string, std::string>>{
           {"2,1,1,2", "dp,tp,cp,pp"}, {"1,2,1,2", "tp,cp,dp,pp"}, {"1,2,1,2", "pp,tp,cp,dp"}, {"2,1,2,1", "cp,dp,tp,pp"}}) {
    const std::string out = run_probes(4, grid, mesh);
    EXPECT_NE(out.find("exit codes: 0 0 0 0"), std::string::npos) << grid << " mesh " << mesh << ": " << out;
  }
}

TEST(GlooCommunicator, AMissingRankIsAnErrorNotAHang) {
  // Rank 0 of 2 alone: the group cannot form; the store timeout turns that into an error.
  const std::string port = std::to_string(free_port());
  const auto r = shell("RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + port +
                       " PROBE_GRID=2,1,1,1 PROBE_TIMEOUT=3 " + std::string(COMM_PROBE));
  EXPECT_EQ(r.code, 3) << r.out;  // comm_probe: the groups could not be built
  EXPECT_NE(r.out.find("comm_probe: rank 0: building the gloo process groups through 127.0.0.1:" + port +
                       " failed within 3 s"),
            std::string::npos)
      << r.out;
}

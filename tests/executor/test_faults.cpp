// Faults in a running job (issue 10): a rank whose launcher fails before it starts, and a rank killed
// with SIGKILL in the middle of training. Every other rank must stop with an error that names the rank
// that is gone (not time out in the rendezvous or a collective, 120 s by default), and the run store must
// mark the run failed, keep the steps that completed and stay consistent.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "paraplan/store.hpp"
#include "process_util.hpp"

using namespace paraplan::planner;
using paraplan::test::Child;
using paraplan::test::free_port;
namespace fs = std::filesystem;

namespace {

fs::path fault_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const fs::path d = fs::temp_directory_path() / ("paraplan-faults-" + std::to_string(getpid())) / info->name();
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// tiny-llama, two CPU ranks of data parallelism: a step takes about 10 ms.
std::string write_dp2_plan(const fs::path& dir) {
  const nlohmann::json doc = {{"model", "tiny-llama"},
                              {"training", {{"seq_len", 32}, {"micro_batch", 2}, {"global_batch", 4},
                                            {"precision", "fp32"}, {"recompute", "none"}}},
                              {"parallel", {{"dp", 2}}},
                              {"cluster", {{"gpu", "cpu"}, {"gpus", 2}}}};
  const fs::path p = dir / "plan.json";
  std::ofstream(p) << doc.dump(2);
  return p.string();
}

std::string torchrun_env(int rank, int port) {
  return "RANK=" + std::to_string(rank) + " LOCAL_RANK=" + std::to_string(rank) +
         " WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " ";
}

// Both ranks given 100 s for the rendezvous and every collective: a rank that merely waited would be
// stopped by the test's limit (-1000), not exit with the message.
std::string run_cmd(const std::string& plan, const std::string& db, int steps) {
  return std::string(PARAPLAN_BIN) + " run " + plan + " --db " + db + " --steps " + std::to_string(steps) +
         " --threads 1 --timeout 100";
}

size_t steps_in(const std::string& db) {
  try {
    Store s(db);
    return s.runs().empty() ? 0 : s.steps(s.runs().front().id).size();
  } catch (const std::exception&) {
    return 0;
  }
}

void expect_consistent_store(const std::string& db) {
  const auto r = paraplan::test::shell("sqlite3 " + db + " 'PRAGMA integrity_check'");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "ok\n");
}

}  // namespace

TEST(Faults, ALauncherThatFailsBeforeItsRankStartsStopsTheOtherRank) {
  for (int failing : {0, 1}) {
    SCOPED_TRACE("the launcher of rank " + std::to_string(failing) + " fails");
    const fs::path dir = fault_dir() / std::to_string(failing);
    fs::create_directories(dir);
    const std::string plan = write_dp2_plan(dir);
    const int port = free_port();
    const std::string good_db = (dir / "runs.sqlite").string();
    const std::string bad_db = (dir / "missing-dir" / "runs.sqlite").string();  // cannot be created
    Child r0 = Child::start(torchrun_env(0, port) + run_cmd(plan, failing == 0 ? bad_db : good_db, 3), dir / "r0.log");
    Child r1 = Child::start(torchrun_env(1, port) + run_cmd(plan, failing == 1 ? bad_db : good_db, 3), dir / "r1.log");
    Child& bad = failing == 0 ? r0 : r1;
    Child& other = failing == 0 ? r1 : r0;
    EXPECT_EQ(bad.wait(std::chrono::seconds(60)), 1) << bad.output();
    EXPECT_NE(bad.output().find("cannot open the run store " + bad_db), std::string::npos) << bad.output();
    EXPECT_EQ(other.wait(std::chrono::seconds(60)), 1) << other.output();
    const std::string expect = "rank " + std::to_string(1 - failing) + ": stopped because rank " +
                               std::to_string(failing) + "'s launcher failed: cannot open the run store " + bad_db;
    EXPECT_NE(other.output().find(expect), std::string::npos) << other.output();
    if (failing == 1) {  // rank 0 created the run: it is marked failed with the reason
      Store s(good_db);
      ASSERT_EQ(s.runs().size(), 1u);
      EXPECT_EQ(s.runs()[0].status, RunStatus::failed);
      EXPECT_NE(s.runs()[0].error.find("rank 1's launcher failed"), std::string::npos) << s.runs()[0].error;
    }
  }
}

TEST(Faults, SigkillOfOneRankMidStepStopsTheOtherNamingTheLostRank) {
  for (int victim : {1, 0}) {  // rank 0 also serves the rendezvous store
    SCOPED_TRACE("rank " + std::to_string(victim) + " is killed");
    const fs::path dir = fault_dir() / std::to_string(victim);
    fs::create_directories(dir);
    const std::string plan = write_dp2_plan(dir);
    const std::string db = (dir / "runs.sqlite").string();
    const int port = free_port();
    Child r0 = Child::start(torchrun_env(0, port) + run_cmd(plan, db, 100000), dir / "r0.log");
    Child r1 = Child::start(torchrun_env(1, port) + run_cmd(plan, db, 100000), dir / "r1.log");
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (steps_in(db) < 10 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_GE(steps_in(db), 10u) << r0.output() << r1.output();
    Child& killed = victim == 0 ? r0 : r1;
    Child& survivor = victim == 0 ? r1 : r0;
    kill(killed.pid, SIGKILL);
    EXPECT_EQ(killed.wait(std::chrono::seconds(10)), -SIGKILL);
    // 30 s: the bound, far below the 100 s the collectives were given.
    EXPECT_EQ(survivor.wait(std::chrono::seconds(30)), 1) << survivor.output();
    const std::string lost = "lost rank " + std::to_string(victim);
    EXPECT_NE(survivor.output().find(lost), std::string::npos) << survivor.output();
    Store s(db);
    ASSERT_EQ(s.runs().size(), 1u);
    EXPECT_EQ(s.runs()[0].status, RunStatus::failed);
    EXPECT_NE(s.runs()[0].error.find(lost), std::string::npos) << s.runs()[0].error;
    const auto steps = s.steps(s.runs()[0].id);
    EXPECT_GE(steps.size(), 10u);  // the steps that completed are kept
    for (const StepRecord& st : steps) EXPECT_TRUE(std::isfinite(st.loss) && st.step_s > 0);
    expect_consistent_store(db);
  }
}

TEST(Faults, SigkillOfOneWorkerUnderTheLauncherFailsTheRunNamingIt) {
  const fs::path dir = fault_dir();
  const std::string plan = write_dp2_plan(dir);
  const std::string db = (dir / "runs.sqlite").string();
  Child launcher = Child::start(run_cmd(plan, db, 100000), dir / "launcher.log");
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (steps_in(db) < 10 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_GE(steps_in(db), 10u) << launcher.output();
  // The launcher's children are the workers; rank 1 is the one whose environment says so.
  const auto kids = paraplan::test::shell("for p in $(pgrep -P " + std::to_string(launcher.pid) +
                                          "); do tr '\\0' '\\n' </proc/$p/environ | grep -qx RANK=1 && echo $p; done");
  ASSERT_FALSE(kids.out.empty()) << "no worker with RANK=1 under the launcher";
  const pid_t rank1 = static_cast<pid_t>(std::stol(kids.out));
  kill(rank1, SIGKILL);
  EXPECT_EQ(launcher.wait(std::chrono::seconds(30)), 1) << launcher.output();
  EXPECT_NE(launcher.output().find("rank 1"), std::string::npos) << launcher.output();
  Store s(db);
  ASSERT_EQ(s.runs().size(), 1u);
  EXPECT_EQ(s.runs()[0].status, RunStatus::failed);
  EXPECT_NE(s.runs()[0].error.find("rank 1"), std::string::npos) << s.runs()[0].error;
  EXPECT_GE(s.steps(s.runs()[0].id).size(), 10u);
  expect_consistent_store(db);
}

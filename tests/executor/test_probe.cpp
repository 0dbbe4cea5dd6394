// paraplan probe end to end (issue 13): a quick probe stores every kind of measurement and fits into
// "measured" parameters; a probe interrupted half-way says where and stores nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "paraplan/store.hpp"
#include "process_util.hpp"
#include "run_util.hpp"

using namespace paraplan::test;
namespace fs = std::filesystem;

namespace {

std::string probe_binary() { return (fs::path(PARAPLAN_BIN).parent_path() / "paraplan-probe").string(); }

}  // namespace

TEST(Probe, AQuickProbeStoresEveryKindAndCalibrates) {
  const fs::path dir = test_dir();
  const std::string db = (dir / "probe.sqlite").string();
  const Result r = shell(cli("probe --quick --db " + db));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("[collectives, 4 processes]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("busbw"), std::string::npos) << r.out;
  paraplan::planner::Store store(db);
  const auto probes = store.probes();
  ASSERT_EQ(probes.size(), 1u);
  EXPECT_EQ(probes[0].device, "cpu");
  std::set<std::string> kinds;
  std::set<int> ranks;
  for (const auto& p : store.probe_results(probes[0].id)) {
    kinds.insert(p.kind);
    ranks.insert(p.ranks);
    EXPECT_GT(p.seconds, 0) << p.kind;
    EXPECT_GE(p.repeats, 2) << p.kind;
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"gemm", "memory", "kernel", "all_reduce", "all_gather", "reduce_scatter",
                                          "send_recv"}));
  EXPECT_EQ(ranks, (std::set<int>{1, 2, 4}));
  const Result c = shell(cli("calibrate --use probes --db " + db + " --name here --out " + (dir / "here.json").string()));
  ASSERT_EQ(c.code, 0) << c.out;
  EXPECT_NE(c.out.find("measured"), std::string::npos) << c.out;  // probes alone: measured, not fitted
  EXPECT_TRUE(fs::exists(dir / "here.json"));
}

// Issue 13: the probe process killed in the middle of a stage: the message names the stage and says that
// nothing was stored; the store holds no probe (the compute stage's results are not kept either).
TEST(Probe, AProbeInterruptedHalfWayStoresNothing) {
  const fs::path dir = test_dir();
  const std::string db = (dir / "probe.sqlite").string();
  const fs::path wrapper = dir / "dying-probe";
  {
    std::ofstream w(wrapper);
    w << "#!/bin/sh\n"
         "# the compute stage runs; the collectives stage is killed as it starts\n"
         "case \"$*\" in *collectives*) kill -9 $$ ;; esac\n"
         "exec '" << probe_binary() << "' \"$@\"\n";
  }
  fs::permissions(wrapper, fs::perms::owner_all);
  const Result r = shell("PARAPLAN_PROBE=" + wrapper.string() + " " + cli("probe --quick --db " + db));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("paraplan probe: interrupted in collectives over 2 processes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("killed by signal 9"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("nothing was stored in " + db), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("gemm fp32"), std::string::npos) << r.out;  // the compute stage had run
  if (fs::exists(db)) EXPECT_TRUE(paraplan::planner::Store(db).probes().empty());
}

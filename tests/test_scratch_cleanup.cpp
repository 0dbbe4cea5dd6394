// remove_scratch (test_dirs.hpp), which every test program runs when its tests passed: it removes this
// process's scratch entries and nothing else.
#include <gtest/gtest.h>

#include <fstream>

#include "test_dirs.hpp"

namespace fs = std::filesystem;

TEST(Scratch, OnlyThisProcesssEntriesAreRemoved) {
  const fs::path dir = paraplan::testing::fresh_dir("paraplan-scratch", "names");
  const long pid = 4242;  // a pid of our own choosing: the names below, not this process's
  for (const char* d : {"paraplan-runs-4242", "paraplan-runs-42420", "paraplan-runs-14242", "paraplan-ckpt-4242",
                        "other-4242", "paraplan-runs-4243"})
    fs::create_directories(dir / d / "inside");
  for (const char* f : {"paraplan-demo-4242-lenet.sqlite", "paraplan-refit-4242-x.sqlite", "paraplan-st-4242.bin",
                        "paraplan-demo-42421-lenet.sqlite", "paraplan-demo-4242x.sqlite"})
    std::ofstream(dir / f) << "x";
  EXPECT_EQ(paraplan::testing::remove_scratch(dir, pid), 5);
  for (const char* gone : {"paraplan-runs-4242", "paraplan-ckpt-4242", "paraplan-demo-4242-lenet.sqlite",
                           "paraplan-refit-4242-x.sqlite", "paraplan-st-4242.bin"})
    EXPECT_FALSE(fs::exists(dir / gone)) << gone;
  for (const char* kept : {"paraplan-runs-42420", "paraplan-runs-14242", "other-4242", "paraplan-runs-4243",
                           "paraplan-demo-42421-lenet.sqlite", "paraplan-demo-4242x.sqlite"})
    EXPECT_TRUE(fs::exists(dir / kept)) << kept;
}

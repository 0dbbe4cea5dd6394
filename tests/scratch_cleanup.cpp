// Linked into every gtest program but the calibration sweep's (its stores are kept to be read): when
// all of the process's tests passed, its scratch files and folders under the temporary directory go
// (test_dirs.hpp remove_scratch); a failed test's stay for a look, and PARAPLAN_KEEP_TEST_DIRS=1 keeps
// them all. Without it, two days of test runs on a development machine left 1.4 GB in /tmp
// (2026-12-07: 838 paraplan-runs-<pid> folders among others).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include "test_dirs.hpp"

namespace {

class RemoveScratch : public ::testing::Environment {
 public:
  void TearDown() override {
    if (!::testing::UnitTest::GetInstance()->Passed() || std::getenv("PARAPLAN_KEEP_TEST_DIRS")) return;
    paraplan::testing::remove_scratch(std::filesystem::temp_directory_path(), static_cast<long>(getpid()));
  }
};

// gtest's documented way to register an environment from a global initializer.
::testing::Environment* const kRemoveScratch = ::testing::AddGlobalTestEnvironment(new RemoveScratch);

}  // namespace

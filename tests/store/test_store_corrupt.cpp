// A run store file that is not one, or a damaged one, gives an error naming the file — the cases the
// fuzz_store target (tests/fuzz) generalises. The store's seed file is tests/fuzz/corpus/store/one-run.db.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "paraplan/store.hpp"

using namespace paraplan::planner;
namespace fs = std::filesystem;

namespace {

const std::string kSeed = std::string(PARAPLAN_SOURCE_DIR) + "/tests/fuzz/corpus/store/one-run.db";

std::string temp_copy(const std::string& name, size_t keep_bytes) {
  const fs::path dir = fs::temp_directory_path() / ("paraplan-corrupt-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const fs::path p = dir / name;
  for (const char* ext : {"", "-wal", "-shm"}) fs::remove(p.string() + ext);
  std::ifstream in(kSeed, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(p, std::ios::binary) << bytes.substr(0, std::min(keep_bytes, bytes.size()));
  return p.string();
}

// Everything a reader does with a store: open (and migrate), list runs, read their rows.
std::string error_of(const std::string& path) {
  try {
    Store s(path);
    for (const RunRecord& r : s.runs()) {
      s.steps(r.id);
      s.memory(r.id);
    }
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(StoreCorrupt, TheSeedStoreReads) {
  const std::string p = temp_copy("whole.db", SIZE_MAX);
  EXPECT_EQ(error_of(p), "");
  Store s(p);
  ASSERT_EQ(s.runs().size(), 1u);
  EXPECT_EQ(s.steps(s.runs()[0].id).size(), 4u);  // 2 ranks x 2 steps (write_seeds.cpp)
}

TEST(StoreCorrupt, NotADatabase) {
  const fs::path dir = fs::temp_directory_path() / ("paraplan-corrupt-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string p = (dir / "text.db").string();
  std::ofstream(p) << std::string(4096, 'x');
  const std::string e = error_of(p);
  EXPECT_NE(e.find("text.db"), std::string::npos) << e;
  EXPECT_NE(e.find("file is not a database"), std::string::npos) << e;
}

// The first 8 KiB of a 32 KiB store: the header promises pages that are not there.
TEST(StoreCorrupt, TruncatedStore) {
  const std::string e = error_of(temp_copy("cut.db", 8192));
  EXPECT_NE(e.find("SQLite"), std::string::npos) << e;
  EXPECT_NE(e.find("malformed"), std::string::npos) << e;
}

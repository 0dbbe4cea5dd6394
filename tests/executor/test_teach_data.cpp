// The LoRA exercise's data: fortune entries, the addition task and its held-out split.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "paraplan/exec/teach_data.hpp"

using namespace paraplan::exec;
namespace fs = std::filesystem;

TEST(TeachData, FortuneEntriesAreSplitAtPercentLines) {
  const fs::path d = fs::temp_directory_path() / ("paraplan-fortunes-" + std::to_string(getpid()));
  fs::create_directories(d);
  std::ofstream(d / "b") << "second\n%\nthird\nline two\n%\n";
  std::ofstream(d / "a") << "first\n%\n";
  std::ofstream(d / "a.dat") << "index, skipped";
  const auto docs = fortune_documents(d.string());  // files by name: a, then b
  EXPECT_EQ(docs, (std::vector<std::string>{"first\n", "second\n", "third\nline two\n"}));
  EXPECT_EQ(fortune_documents((d / "b").string()).size(), 2u);
  try {
    fortune_documents((d / "missing").string());
    ADD_FAILURE();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("missing: no such file or directory"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("apt-get install fortunes"), std::string::npos);
  }
}

TEST(TeachData, AdditionIsWrittenWithTheAnswerReversed) {
  const Addition p{47, 85};
  EXPECT_EQ(p.prompt(), "47+85=");
  EXPECT_EQ(p.answer(), "231");  // 132, least-significant digit first
  EXPECT_EQ(p.text(), "47+85=231");
  EXPECT_EQ(answer_of("231\nxyz"), "231");
  EXPECT_EQ(answer_of("2310"), "2310");  // no end of document: not the answer "231"
}

TEST(TeachData, CopyProblems) {
  const auto train = task_problems("copy", 200, 5, 1, false), eval = task_problems("copy", 50, 5, 2, true);
  std::set<std::string> seen;
  for (const auto& p : train) {
    ASSERT_EQ(p.prompt.size(), 6u);
    EXPECT_EQ(p.prompt.substr(0, 5), p.answer);
    EXPECT_EQ(p.text(), p.answer + "=" + p.answer);
    seen.insert(p.prompt);
  }
  for (const auto& p : eval) EXPECT_FALSE(seen.count(p.prompt)) << p.text();
  EXPECT_EQ(task_problems("addition", 1, 2, 3, false)[0].answer.size() >= 2, true);
  try {
    task_problems("sort", 1, 2, 3, false);
    ADD_FAILURE();
  } catch (const DataError& e) {
    EXPECT_EQ(std::string(e.what()), "--task = sort: the tasks are \"addition\" and \"copy\"");
  }
}

TEST(TeachData, TrainingAndEvaluationPairsNeverMeet) {
  const auto train = addition_problems(5000, 2, 1, false), eval = addition_problems(500, 2, 2, true);
  std::set<std::pair<int64_t, int64_t>> seen;
  for (const auto& p : train) {
    EXPECT_GE(p.a, 10);
    EXPECT_LE(p.a, 99);
    EXPECT_GE(p.b, 10);
    EXPECT_LE(p.b, 99);
    seen.insert({p.a, p.b});
  }
  for (const auto& p : eval) EXPECT_FALSE(seen.count({p.a, p.b})) << p.text();
  // About one pair in ten is held out: of the 8,100 two-digit pairs, between 730 and 890 (a 3-sigma band
  // around 810 for a binomial(8100, 0.1), sigma = 27).
  int held = 0;
  for (int a = 10; a < 100; ++a)
    for (int b = 10; b < 100; ++b) held += held_out(a, b);
  EXPECT_GT(held, 729);
  EXPECT_LT(held, 891);
  EXPECT_EQ(addition_problems(3, 2, 7, false)[2].text(), addition_problems(3, 2, 7, false)[2].text());  // deterministic
}

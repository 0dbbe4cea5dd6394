// Behaviour pinned across refactors (issue 11): `paraplan validate`, `search`, `simulate` and `plan`
// print exactly what they printed when tests/golden/ was recorded (tests/golden/record says when to
// re-record). The numbers themselves are checked against hand-derived and published values in the
// planner and simulator suites; this test only proves that a change meant to move no number moved none.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "run_paraplan.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path kGolden = fs::path(PARAPLAN_SOURCE_DIR) / "tests" / "golden";

json read_golden(const std::string& name) {
  std::ifstream in(kGolden / name);
  EXPECT_TRUE(in.good()) << (kGolden / name);
  return json::parse(in, nullptr, false);
}

// The first differing leaf, for a readable failure.
std::string first_difference(const json& got, const json& want, const std::string& path = "") {
  if (got.type() != want.type()) return path + ": type " + got.type_name() + " vs " + want.type_name();
  if (got.is_object()) {
    for (const auto& [k, v] : want.items()) {
      if (!got.contains(k)) return path + "/" + k + ": missing";
      if (auto d = first_difference(got[k], v, path + "/" + k); !d.empty()) return d;
    }
    for (const auto& [k, v] : got.items())
      if (!want.contains(k)) return path + "/" + k + ": not in the recording";
    return "";
  }
  if (got.is_array()) {
    if (got.size() != want.size()) return path + ": " + std::to_string(got.size()) + " vs " + std::to_string(want.size()) + " items";
    for (size_t i = 0; i < got.size(); ++i)
      if (auto d = first_difference(got[i], want[i], path + "/" + std::to_string(i)); !d.empty()) return d;
    return "";
  }
  return got == want ? "" : path + ": " + got.dump() + " vs recorded " + want.dump();
}

void expect_same(const std::string& args, const std::string& golden, bool drop_seconds = false, bool drop_rows = false) {
  const auto r = clitest::run(args);
  ASSERT_EQ(r.code, 0) << r.out;
  json got = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(got.is_discarded()) << r.out;
  if (drop_seconds) got.erase("seconds");  // wall time of the search
  if (drop_rows) got.erase("rows");        // 1,440 vTrain rows: their summaries and shape groups pin them
  const json want = read_golden(golden);
  EXPECT_EQ(first_difference(got, want), "") << "paraplan " << args << " differs from tests/golden/" << golden;
}

std::vector<std::string> examples() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(fs::path(PARAPLAN_SOURCE_DIR) / "data" / "examples"))
    if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
  return names;
}

std::string example_path(const std::string& n) {
  return (fs::path(PARAPLAN_SOURCE_DIR) / "data" / "examples" / (n + ".json")).string();
}

}  // namespace

TEST(Golden, ValidateIsUnchanged) {
  expect_same("validate --json --source narayanan21-t1,korthikanti22-t5", "validate.json");
  expect_same("validate --json --source vtrain-single", "validate-vtrain.json", false, true);
}

TEST(Golden, SearchSimulateAndPlanOfEveryExampleAreUnchanged) {
  const auto names = examples();
  ASSERT_GE(names.size(), 3u);
  for (const std::string& n : names) {
    SCOPED_TRACE(n);
    expect_same("search " + example_path(n) + " --top 10 --json", "search-" + n + ".json", true);
    expect_same("simulate " + example_path(n) + " --json", "simulate-" + n + ".json");
    expect_same("plan " + example_path(n) + " --json", "plan-" + n + ".json");
  }
}

// docs/validation.md quotes `paraplan validate` between two markers; the page must show what the
// binary prints today (re-run the command and paste when a model change moves a number).
TEST(Docs, ValidationPageShowsTheBinarysOutput) {
  std::ifstream in(fs::path(PARAPLAN_SOURCE_DIR) / "docs" / "validation.md");
  const std::string page((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string begin = "<!-- paraplan validate: begin -->\n```\n$ paraplan validate\n", end = "```\n<!-- paraplan validate: end -->";
  const size_t b = page.find(begin), e = page.find(end);
  ASSERT_NE(b, std::string::npos) << "docs/validation.md has no validate block";
  ASSERT_NE(e, std::string::npos);
  const auto r = clitest::run("validate");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(page.substr(b + begin.size(), e - b - begin.size()), r.out);
}

// The run store: schema and migrations, concurrent writers in separate processes, and the summary a
// finished run gets (values computed by hand below).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "paraplan/store.hpp"
#include "sample_store.hpp"

using namespace paraplan::planner;
using paraplan::test::query;
using paraplan::test::temp_db;
namespace fs = std::filesystem;

namespace {

NewRun sample_run() {
  NewRun r;
  r.plan_json = R"({"model":"tiny-llama"})";
  r.name = "tiny-llama dp=2";
  r.world_size = 2;
  r.steps = 3;
  r.hardware = R"({"gpu":"cpu"})";
  r.git_revision = "abc123";
  r.host = "test";
  r.predicted_peak_bytes = 1000.0;
  return r;
}

// What opening `path` with the schema history `migrations` throws; "" when it opens.
std::string open_error(const std::string& path, std::span<const Migration> migrations) {
  try {
    Store s(path, migrations);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Store, NewFileHasTheLatestSchemaAndRoundTripsARun) {
  const std::string path = temp_db("new.sqlite");
  Store s(path);
  EXPECT_EQ(s.schema_version(), store_migrations().back().version);
  const int64_t id = s.create_run(sample_run());
  const auto r = s.run(id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, RunStatus::created);
  EXPECT_EQ(r->run.name, "tiny-llama dp=2");
  EXPECT_EQ(r->run.plan_json, R"({"model":"tiny-llama"})");
  EXPECT_EQ(r->run.predicted_peak_bytes, 1000.0);
  EXPECT_FALSE(r->run.predicted_step_s.has_value());  // NULL until the time model predicts it
  EXPECT_FALSE(r->measured_peak_bytes.has_value());
  EXPECT_EQ(r->created_at.size(), 20u);  // 2025-01-01T00:00:00Z
}

TEST(Store, UsesWriteAheadLogging) {
  const std::string path = temp_db("wal.sqlite");
  Store s(path);
  EXPECT_EQ(query(path, "PRAGMA journal_mode"), std::vector<std::string>{"wal"});
}

TEST(Store, MigratesAnOlderFileAndKeepsItsRows) {
  const std::string path = temp_db("migrate.sqlite");
  const Migration v1[] = {{1, "notes", "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)"}};
  const Migration v2[] = {v1[0], {2, "notes.author", "ALTER TABLE notes ADD COLUMN author TEXT DEFAULT 'nobody'"}};
  { Store s(path, v1); EXPECT_EQ(s.schema_version(), 1); }
  EXPECT_TRUE(query(path, "INSERT INTO notes (text) VALUES ('kept')").empty());
  { Store s(path, v2); EXPECT_EQ(s.schema_version(), 2); }
  { Store s(path, v2); EXPECT_EQ(s.schema_version(), 2); }  // nothing left to apply
  EXPECT_EQ(query(path, "SELECT text, author FROM notes"), std::vector<std::string>{"kept|nobody"});
  EXPECT_EQ(query(path, "SELECT COUNT(*) FROM schema_version"),
            std::vector<std::string>{"2"});  // one row per applied migration
}

TEST(Store, RefusesAFileFromANewerSchema) {
  const std::string path = temp_db("newer.sqlite");
  const Migration v1[] = {{1, "a", "CREATE TABLE a (x)"}};
  const Migration v2[] = {v1[0], {2, "b", "CREATE TABLE b (x)"}};
  { Store s(path, v2); }
  const std::string error = open_error(path, v1);
  EXPECT_NE(error.find("schema version 2, newer"), std::string::npos)
      << "opened a version-2 file with a version-1 schema: '" << error << "'";
}

TEST(Store, AFailedMigrationLeavesTheFileAsItWas) {
  const std::string path = temp_db("broken.sqlite");
  const Migration good[] = {{1, "a", "CREATE TABLE a (x)"}};
  const Migration bad[] = {good[0], {2, "broken", "CREATE TABLE b (x); THIS IS NOT SQL"}};
  { Store s(path, good); }
  const std::string error = open_error(path, bad);  // SQLite's own words for the statement that failed
  EXPECT_NE(error.find("syntax error"), std::string::npos) << "a migration with invalid SQL: '" << error << "'";
  Store s(path, good);
  EXPECT_EQ(s.schema_version(), 1);  // the transaction rolled table b back too
}

TEST(Store, TheFirstFailureIsKept) {
  Store s(temp_db("fail.sqlite"));
  const int64_t id = s.create_run(sample_run());
  s.fail_run(id, "rank 1: tensor x missing");
  s.fail_run(id, "rank 0: killed after rank 1 failed");
  const auto r = s.run(id);
  EXPECT_EQ(r->status, RunStatus::failed);
  EXPECT_EQ(r->error, "rank 1: tensor x missing");
  s.finish_run(id);  // a failed run stays failed
  EXPECT_EQ(s.run(id)->status, RunStatus::failed);
}

TEST(Store, SummaryOfAFinishedRun) {
  Store s(temp_db("summary.sqlite"));
  const int64_t id = s.create_run(sample_run());
  // Two ranks, three steps; each rank processes 100 tokens per step.
  const double step_s[3][2] = {{1.0, 2.0}, {0.5, 0.7}, {0.4, 0.6}};
  for (int step = 1; step <= 3; ++step)
    for (int rank = 0; rank < 2; ++rank) {
      const double t = step_s[step - 1][rank];
      s.add_step({id, rank, step, 5.0 - step, t, t / 10, 100.0 / t});
    }
  s.add_memory({{id, 0, "peak", 900.0, 950.0}, {id, 1, "peak", 900.0, 960.0}, {id, 0, "weights", 400.0, 400.0}});
  s.finish_run(id);
  const auto r = s.run(id);
  EXPECT_EQ(r->status, RunStatus::succeeded);
  // Steps 2 and 3 (step 1 is warm-up); each lasts as long as its slower rank: (0.7 + 0.6) / 2.
  EXPECT_DOUBLE_EQ(*r->measured_step_s, 0.65);
  EXPECT_DOUBLE_EQ(*r->measured_comm_s, 0.065);
  // 200 tokens per step over 1.3 s.
  EXPECT_NEAR(*r->measured_tokens_per_s, 400.0 / 1.3, 1e-9);
  EXPECT_DOUBLE_EQ(*r->measured_peak_bytes, 960.0);
  EXPECT_EQ(s.steps(id).size(), 6u);
  EXPECT_EQ(s.memory(id).size(), 3u);
}

// Issue 10: ranks that open one store at the same moment all succeed. Before the fix 14 of 160 openers
// failed with "PRAGMA journal_mode=WAL: database is locked" (8 processes x 20 fresh files on 2 cores).
TEST(Store, EightProcessesOpeningOneNewFileAtOnceAllSucceedTwentyTimes) {
  constexpr int kOpeners = 8, kRounds = 20;
  for (int round = 0; round < kRounds; ++round) {
    const std::string path = temp_db("open-at-once-" + std::to_string(round) + ".sqlite");
    int gate[2];
    ASSERT_EQ(pipe(gate), 0);
    std::vector<pid_t> kids;
    for (int i = 0; i < kOpeners; ++i) {
      const pid_t pid = fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        close(gate[1]);
        char c;
        [[maybe_unused]] const ssize_t n = read(gate[0], &c, 1);  // returns 0 when the parent closes the gate
        int code = 0;
        try {
          Store s(path);
          s.create_run(sample_run());
        } catch (const std::exception& e) {
          fprintf(stderr, "opener %d: %s\n", i, e.what());
          code = 1;
        }
        _exit(code);
      }
      kids.push_back(pid);
    }
    close(gate[0]);
    close(gate[1]);  // all openers start together
    int failed = 0;
    for (pid_t k : kids) {
      int status = 0;
      waitpid(k, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
    }
    ASSERT_EQ(failed, 0) << "round " << round << ": " << failed << " of " << kOpeners << " openers failed";
    EXPECT_EQ(Store(path).runs().size(), static_cast<size_t>(kOpeners)) << "round " << round;
  }
}

// Issue 13: importing the same published rows twice adds them once (the source names the row).
TEST(Store, ImportedRunsAreAddedOnceEach) {
  const std::string path = temp_db("import.sqlite");
  Store s(path);
  ImportedRun a = paraplan::test::sample_imported(), b = a;
  b.source = "published-step-time.csv:14 (korthikanti22-t5)";
  b.measured_step_s = 1.10;
  const ImportOutcome first = s.import_runs({a, b});
  EXPECT_EQ(first.added, 2);
  EXPECT_EQ(first.already_there, 0);
  const ImportOutcome again = s.import_runs({b, a});
  EXPECT_EQ(again.added, 0);
  EXPECT_EQ(again.already_there, 2);
  const auto runs = s.runs();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[1].measured_step_s, 1.10);
  EXPECT_EQ(runs[1].origin, "imported");
  EXPECT_EQ(runs[1].status, RunStatus::succeeded);
}

// Migration 2 (issue 15): evaluation metrics per run, and steps written in one transaction.
TEST(Store, MetricsAndBatchedStepsRoundTrip) {
  Store s(temp_db("metrics.sqlite"));
  const int64_t id = s.create_run(sample_run());
  s.add_metrics({{id, "test_accuracy", 2, 0.875, "fraction"}, {id, "test_accuracy", 1, 0.8125, "fraction"},
                 {id, "epoch_s", 1, 12.5, "s"}});
  s.add_metrics({{id, "test_accuracy", 2, 0.9, "fraction"}});  // the same (name, step) is replaced
  const auto m = s.metrics(id);
  ASSERT_EQ(m.size(), 3u);  // ordered by name, then step
  EXPECT_EQ(m[0].name, "epoch_s");
  EXPECT_EQ(m[0].unit, "s");
  EXPECT_EQ(m[1].name, "test_accuracy");
  EXPECT_EQ(m[1].step, 1);
  EXPECT_EQ(m[1].value, 0.8125);
  EXPECT_EQ(m[2].value, 0.9);
  EXPECT_TRUE(s.metrics(id + 1).empty());
  s.add_steps({{id, 0, 1, 2.5, 0.5, 0.1, 100}, {id, 0, 2, 2.0, 0.25, 0.05, 200}});
  const auto st = s.steps(id);
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[1].loss, 2.0);
  EXPECT_EQ(st[1].tokens_per_s, 200);
}

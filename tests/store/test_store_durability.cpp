// The run store under the conditions it meets: many processes writing at once, writers killed with
// SIGKILL in the middle of a write, and files written by every earlier schema version.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "paraplan/store.hpp"
#include "sample_store.hpp"

using namespace paraplan::planner;
using paraplan::test::query;
using paraplan::test::temp_db;
namespace fs = std::filesystem;

namespace {

// Every table's columns (name, type, not null, default, primary key), as PRAGMA table_info lists them.
std::map<std::string, std::vector<std::string>> columns(const std::string& path) {
  std::map<std::string, std::vector<std::string>> out;
  for (const std::string& t : query(path, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"))
    out[t] = query(path, ("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('" + t + "')").c_str());
  return out;
}

// The metrics and calibration data of a file written at schema version 3 or later; none in an older one
// (store-v2.sqlite has the metrics table of migration 2, empty).
void expect_calibration_sample(Store& s, int version) {
  using namespace paraplan::test;
  const auto runs = s.runs();
  for (size_t i = 0; i < 3 && i < runs.size(); ++i) EXPECT_EQ(runs[i].origin, "executor");
  if (version < 3) {
    EXPECT_EQ(runs.size(), 3u);
    EXPECT_TRUE(s.metrics(1).empty());
    EXPECT_TRUE(s.op_times(1).empty());
    EXPECT_TRUE(s.probes().empty());
    EXPECT_TRUE(s.calibrations().empty());
    return;
  }
  ASSERT_EQ(runs.size(), 4u);
  const auto metrics = s.metrics(1);  // ordered by name, then step
  ASSERT_EQ(metrics.size(), 3u);
  EXPECT_EQ(metrics[0].name, "epoch_s");
  EXPECT_EQ(metrics[0].value, 12.5);
  EXPECT_EQ(metrics[2].value, 0.875);
  EXPECT_EQ(metrics[2].unit, "fraction");
  const RunRecord& imported = runs[3];
  EXPECT_EQ(imported.origin, "imported");
  EXPECT_EQ(imported.source, sample_imported().source);
  EXPECT_EQ(imported.status, RunStatus::succeeded);
  EXPECT_EQ(imported.measured_step_s, 1.42);
  EXPECT_EQ(imported.run.name, "imported gpt-22b");
  const auto ops = s.op_times(1);
  const auto want_ops = sample_op_times(1);
  ASSERT_EQ(ops.size(), want_ops.size());
  for (const OpTimeRecord& w : want_ops) {
    bool found = false;
    for (const OpTimeRecord& o : ops)
      if (o.rank == w.rank && o.step == w.step && o.op_class == w.op_class) {
        found = true;
        EXPECT_EQ(o.seconds, w.seconds);
        EXPECT_EQ(o.calls, w.calls);
      }
    EXPECT_TRUE(found) << w.op_class;
  }
  const auto probes = s.probes();
  ASSERT_EQ(probes.size(), 1u);
  EXPECT_EQ(probes[0].device, "cpu");
  EXPECT_EQ(probes[0].host, "sample-host");
  EXPECT_EQ(probes[0].seconds, 42.5);
  EXPECT_EQ(s.probe_results(probes[0].id), sample_probe_results(version));
  const auto cals = s.calibrations();
  ASSERT_EQ(cals.size(), 1u);
  EXPECT_EQ(cals[0].name, "sample");
  EXPECT_EQ(cals[0].profile_json, kSampleProfile);
}

void expect_sample(Store& s, int version) {
  using paraplan::test::sample_memory;
  using paraplan::test::sample_new_run;
  using paraplan::test::sample_step;
  expect_calibration_sample(s, version);
  auto runs = s.runs();
  ASSERT_GE(runs.size(), 3u);
  runs.resize(3);
  const RunStatus status[] = {RunStatus::succeeded, RunStatus::failed, RunStatus::running};
  for (int i = 1; i <= 3; ++i) {
    const RunRecord& r = runs[static_cast<size_t>(i - 1)];
    const NewRun want = sample_new_run(i);
    EXPECT_EQ(r.id, i);
    EXPECT_EQ(r.status, status[i - 1]);
    EXPECT_EQ(r.run.name, want.name);
    EXPECT_EQ(r.run.plan_json, want.plan_json);
    EXPECT_EQ(r.run.world_size, want.world_size);
    EXPECT_EQ(r.run.steps, want.steps);
    EXPECT_EQ(r.run.hardware, want.hardware);
    EXPECT_EQ(r.run.software, want.software);
    EXPECT_EQ(r.run.git_revision, want.git_revision);
    EXPECT_EQ(r.run.host, want.host);
    EXPECT_EQ(r.run.predicted_peak_bytes, want.predicted_peak_bytes);
    EXPECT_EQ(r.run.predicted_step_s, want.predicted_step_s);
    EXPECT_EQ(r.created_at.size(), 20u);
  }
  // Run 1: steps 2 and 3 (step 1 is warm-up), each as long as its slower rank: (0.03125 + 0.046875) / 2.
  EXPECT_EQ(runs[0].measured_step_s, 0.0390625);
  EXPECT_EQ(runs[0].measured_peak_bytes, 2552592.0);
  EXPECT_EQ(runs[0].finished_at.size(), 20u);
  EXPECT_EQ(runs[1].error, "rank 1: killed by signal 9");
  EXPECT_TRUE(runs[2].finished_at.empty());
  std::vector<StepRecord> want_steps;
  for (int step = 1; step <= 3; ++step)
    for (int rank = 0; rank < 2; ++rank) want_steps.push_back(sample_step(1, rank, step));
  const auto steps = s.steps(1);
  ASSERT_EQ(steps.size(), want_steps.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(std::tie(steps[i].run_id, steps[i].rank, steps[i].step), std::tie(want_steps[i].run_id, want_steps[i].rank, want_steps[i].step));
    EXPECT_EQ(std::tie(steps[i].loss, steps[i].step_s, steps[i].comm_s, steps[i].tokens_per_s),
              std::tie(want_steps[i].loss, want_steps[i].step_s, want_steps[i].comm_s, want_steps[i].tokens_per_s));
  }
  const auto memory = s.memory(1);
  ASSERT_EQ(memory.size(), 8u);
  for (const MemoryRecord& m : memory) {
    bool found = false;
    for (const MemoryRecord& w : sample_memory(1, m.rank))
      if (w.category == m.category) {
        found = true;
        EXPECT_EQ(m.predicted_bytes, w.predicted_bytes) << m.category;
        EXPECT_EQ(m.measured_bytes, w.measured_bytes) << m.category;
      }
    EXPECT_TRUE(found) << m.category;
  }
  EXPECT_EQ(s.steps(2).size(), 1u);
  EXPECT_EQ(s.steps(3).size(), 1u);
  EXPECT_EQ(s.steps(3)[0].rank, 1);
}

// What a migration must keep: every table of a file, its column names, and each row as the text of those
// columns (SQL quote(), so NULL, 0 and '' differ), in rowid order. Read through SQLite, not the Store.
struct Table {
  std::vector<std::string> columns, rows;
};
std::vector<std::string> table_rows(const std::string& path, const std::string& table,
                                    const std::vector<std::string>& cols) {
  std::string list;
  for (const std::string& c : cols) list += (list.empty() ? "" : " || '|' || ") + ("quote(\"" + c + "\")");
  return query(path, ("SELECT " + list + " FROM \"" + table + "\" ORDER BY rowid").c_str());
}
std::map<std::string, Table> contents(const std::string& path) {
  std::map<std::string, Table> out;
  for (const std::string& t : query(path, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")) {
    Table& tab = out[t];
    tab.columns = query(path, ("SELECT name FROM pragma_table_info('" + t + "')").c_str());
    tab.rows = table_rows(path, t, tab.columns);
  }
  return out;
}

// Every table, column and row of `before` is in the migrated file `after`, unchanged; a migration adds
// columns and tables, and rows only to schema_version.
void expect_everything_kept(const std::map<std::string, Table>& before, const std::string& after) {
  const auto now = contents(after);
  for (const auto& [table, old] : before) {
    SCOPED_TRACE("table " + table);
    ASSERT_EQ(now.count(table), 1u) << "dropped";
    std::vector<std::string> rows = table_rows(after, table, old.columns);
    if (table == "schema_version") {
      ASSERT_GE(rows.size(), old.rows.size());
      rows.resize(old.rows.size());
    }
    EXPECT_EQ(rows, old.rows);
  }
}

}  // namespace

// Every schema version that ever shipped has a file in tests/store/data, written by make_store_file when
// that version was the newest. Each must open with this build, migrate to its newest schema (the same
// columns a new file gets) and keep every row. Adding migration N+1 without store-v(N+1).sqlite fails
// here, so the next migration is tested from this one too.
TEST(StoreMigrations, AFileOfEveryEarlierSchemaVersionMigratesAndKeepsItsRows) {
  const int latest = store_migrations().back().version;
  const std::string fresh = temp_db("fresh.sqlite");
  { Store s(fresh); }
  const auto want_columns = columns(fresh);
  ASSERT_EQ(want_columns.count("runs"), 1u);
  for (int v = 1; v <= latest; ++v) {
    SCOPED_TRACE("schema version " + std::to_string(v));
    const fs::path src = fs::path(STORE_DATA_DIR) / ("store-v" + std::to_string(v) + ".sqlite");
    ASSERT_TRUE(fs::exists(src)) << src << " is missing: when a migration is added, write the file of the new "
                                        "version with make_store_file (tests/store/make_store_file.cpp)";
    const std::string copy = temp_db("v" + std::to_string(v) + ".sqlite");
    fs::copy_file(src, copy);
    EXPECT_EQ(query(copy, "SELECT MAX(version) FROM schema_version"), std::vector<std::string>{std::to_string(v)});
    const auto before = contents(copy);
    {
      Store s(copy);
      EXPECT_EQ(s.schema_version(), latest);
      expect_sample(s, v);
    }
    EXPECT_EQ(columns(copy), want_columns);
    EXPECT_EQ(query(copy, "PRAGMA integrity_check"), std::vector<std::string>{"ok"});
    expect_everything_kept(before, copy);
  }
  EXPECT_FALSE(fs::exists(fs::path(STORE_DATA_DIR) / ("store-v" + std::to_string(latest + 1) + ".sqlite")))
      << "a test file newer than this build's schema";
}

// Issue 10: 8 ranks each writing 1000 rows at once lose none, and every row holds what its writer wrote.
TEST(StoreConcurrency, EightProcessesWritingAThousandRowsEachLoseNothing) {
  const std::string path = temp_db("thousands.sqlite");
  int64_t id = 0;
  { id = Store(path).create_run(paraplan::test::sample_new_run(1)); }
  constexpr int kWriters = 8, kRows = 1000;
  std::vector<pid_t> kids;
  for (int w = 0; w < kWriters; ++w) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int code = 0;
      try {
        Store s(path);  // each process its own connection, as each rank has
        for (int i = 1; i <= kRows; ++i) s.add_step({id, w, i, w * 1000.0 + i, 0.001 * i, 0.0005 * w, 1.0 * i});
      } catch (const std::exception& e) {
        fprintf(stderr, "writer %d: %s\n", w, e.what());
        code = 1;
      }
      _exit(code);
    }
    kids.push_back(pid);
  }
  for (pid_t k : kids) {
    int status = 0;
    waitpid(k, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a writer failed";
  }
  Store s(path);
  const auto steps = s.steps(id);
  ASSERT_EQ(steps.size(), static_cast<size_t>(kWriters * kRows));
  std::set<std::pair<int, int>> seen;
  for (const StepRecord& r : steps) {
    seen.insert({r.rank, r.step});
    EXPECT_EQ(r.loss, r.rank * 1000.0 + r.step);
    EXPECT_EQ(r.step_s, 0.001 * r.step);
    EXPECT_EQ(r.comm_s, 0.0005 * r.rank);
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kWriters * kRows));
  EXPECT_EQ(query(path, "PRAGMA integrity_check"), std::vector<std::string>{"ok"});
}

namespace {

// What a writer reports after each commit, through a pipe (one write of fewer than PIPE_BUF bytes is
// atomic, so a killed writer never leaves half a record).
struct Committed {
  int32_t kind;  // 0 run created, 1 step added, 2 memory added, 3 run finished
  int32_t writer;
  int64_t run;
  int32_t step;
  int32_t pad;
};

[[noreturn]] void writer_loop(const std::string& path, int writer, int fd) {
  try {
    Store s(path);
    for (int i = 0;; ++i) {
      auto report = [&](int32_t kind, int64_t run, int32_t step) {
        const Committed c{kind, writer, run, step, 0};
        if (write(fd, &c, sizeof c) != static_cast<ssize_t>(sizeof c)) _exit(3);
      };
      NewRun r = paraplan::test::sample_new_run(1);
      r.name = "writer " + std::to_string(writer) + " run " + std::to_string(i);
      const int64_t run = s.create_run(r);
      report(0, run, 0);
      for (int step = 1; step <= 3; ++step) {
        s.add_step(paraplan::test::sample_step(run, writer, step));
        report(1, run, step);
      }
      std::vector<MemoryRecord> mem = paraplan::test::sample_memory(run, writer);
      for (const auto& m : paraplan::test::sample_memory(run, writer)) mem.push_back({run, writer, m.category + "-2", m.predicted_bytes, m.measured_bytes});
      s.add_memory(mem);  // 8 rows in one transaction: all of them or none
      report(2, run, 0);
      s.finish_run(run);
      report(3, run, 0);
    }
  } catch (const std::exception& e) {
    fprintf(stderr, "writer %d: %s\n", writer, e.what());
    _exit(1);
  }
}

}  // namespace

// Issue 10: writers killed with SIGKILL at random moments, over and over, while others keep writing.
// Afterwards the file passes PRAGMA integrity_check, opens, and holds everything a writer reported
// committed; a transaction cut short left nothing (memory rows come 8 at a time or not at all).
TEST(StoreCrash, WritersKilledAtRandomMomentsLeaveAnIntactStoreWithEveryCommittedRun) {
  const std::string path = temp_db("killed.sqlite");
  { Store s(path); }
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("random kill moments from seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::vector<Committed> committed;
  auto drain = [&] {
    Committed c;
    while (read(fds[0], &c, sizeof c) == static_cast<ssize_t>(sizeof c)) committed.push_back(c);
  };
  auto spawn = [&](int writer) {
    const pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      writer_loop(path, writer, fds[1]);
    }
    return pid;
  };
  constexpr int kWriters = 4, kKills = 40;
  std::vector<pid_t> pids;
  for (int w = 0; w < kWriters; ++w) pids.push_back(spawn(w));
  int unexpected_exits = 0;
  for (int k = 0; k < kKills; ++k) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::uniform_int_distribution<int>(1, 30)(rng));
    while (std::chrono::steady_clock::now() < until) {
      drain();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    const int w = std::uniform_int_distribution<int>(0, kWriters - 1)(rng);
    kill(pids[static_cast<size_t>(w)], SIGKILL);
    int status = 0;
    waitpid(pids[static_cast<size_t>(w)], &status, 0);
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) ++unexpected_exits;
    pids[static_cast<size_t>(w)] = spawn(w);
  }
  for (pid_t p : pids) {
    kill(p, SIGKILL);
    int status = 0;
    waitpid(p, &status, 0);
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) ++unexpected_exits;
  }
  close(fds[1]);
  drain();
  close(fds[0]);
  EXPECT_EQ(unexpected_exits, 0) << "a writer failed on its own (see its message above)";

  EXPECT_EQ(query(path, "PRAGMA integrity_check"), std::vector<std::string>{"ok"});
  Store s(path);
  std::map<int64_t, RunRecord> runs;
  for (const RunRecord& r : s.runs()) runs[r.id] = r;
  int finished = 0;
  for (const Committed& c : committed) {
    SCOPED_TRACE("writer " + std::to_string(c.writer) + " run " + std::to_string(c.run));
    ASSERT_EQ(runs.count(c.run), 1u) << "a committed run is missing";
    if (c.kind == 1) {
      bool found = false;
      for (const StepRecord& st : s.steps(c.run))
        if (st.rank == c.writer && st.step == c.step) found = st.loss == paraplan::test::sample_step(c.run, c.writer, c.step).loss;
      EXPECT_TRUE(found) << "committed step " << c.step << " is missing or wrong";
    } else if (c.kind == 2) {
      EXPECT_EQ(s.memory(c.run).size(), 8u);
    } else if (c.kind == 3) {
      ++finished;
      EXPECT_EQ(runs[c.run].status, RunStatus::succeeded);
      EXPECT_EQ(runs[c.run].measured_step_s, 0.0390625);  // steps 2 and 3: (0.03125 + 0.046875) / 2
    }
  }
  for (const auto& [id, r] : runs) {
    const size_t m = s.memory(id).size();
    EXPECT_TRUE(m == 0 || m == 8) << "run " << id << " has " << m << " memory rows: a transaction was half-applied";
    EXPECT_LE(s.steps(id).size(), 3u);
  }
  EXPECT_GT(finished, kKills / 2) << "the writers hardly committed anything: the test would prove little";
  RecordProperty("committed_writes", static_cast<int>(committed.size()));
}

// Issue 13 over issue 15: a store of schema 2 (main's store-v2.sqlite, with metrics added to it here as
// paraplan demo writes them) migrates to 3 keeping its metrics and runs; its runs become executor runs and
// the calibration tables start empty.
TEST(StoreMigrations, AVersionTwoStoreWithMetricsMigratesToThreeLosingNothing) {
  const std::string copy = temp_db("v2-metrics.sqlite");
  fs::copy_file(fs::path(STORE_DATA_DIR) / "store-v2.sqlite", copy);
  ASSERT_EQ(query(copy, "SELECT MAX(version) FROM schema_version"), std::vector<std::string>{"2"});
  ASSERT_TRUE(query(copy, "INSERT INTO metrics VALUES (1, 'test_accuracy', 1, 0.8125, 'fraction'), "
                          "(1, 'test_accuracy', 2, 0.875, 'fraction'), (2, 'validation_loss', 0, 2.5, 'nats/token')")
                  .empty());
  const auto before = contents(copy);
  ASSERT_EQ(before.at("metrics").rows.size(), 3u);
  {
    Store s(copy);
    EXPECT_GE(s.schema_version(), 3);
    const auto m = s.metrics(1);
    ASSERT_EQ(m.size(), 2u);
    EXPECT_EQ(m[1].value, 0.875);
    ASSERT_EQ(s.metrics(2).size(), 1u);
    EXPECT_EQ(s.metrics(2)[0].unit, "nats/token");
    const auto runs = s.runs();
    ASSERT_EQ(runs.size(), 3u);
    for (const RunRecord& r : runs) {
      EXPECT_EQ(r.origin, "executor");
      EXPECT_EQ(r.source, "");
    }
    EXPECT_TRUE(s.op_times(1).empty());
    EXPECT_TRUE(s.probes().empty());
    EXPECT_TRUE(s.calibrations().empty());
  }
  expect_everything_kept(before, copy);
  EXPECT_EQ(query(copy, "PRAGMA integrity_check"), std::vector<std::string>{"ok"});
}

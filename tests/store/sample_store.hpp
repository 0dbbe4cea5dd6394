#pragma once
// Test helpers of the run store, and the rows of the store files kept as test data (tests/store/data/store-vN.sqlite), one file per schema
// version, each written by the paraplan that had that version as its newest (make_store_file.cpp at
// that version). Every later paraplan must open each of them, migrate it to its own schema and read
// these rows back unchanged. The values are chosen, not measured: a succeeded run of 2 ranks x 3 steps
// with memory rows, a failed run, and a run still marked running (its writer was killed).
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "paraplan/store.hpp"

namespace paraplan::test {

// A path for a new store file under the temporary directory, with no file, WAL or shared memory left
// from an earlier run.
inline std::string temp_db(const std::string& name) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("paraplan-store-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::filesystem::path p = dir / name;
  for (const char* ext : {"", "-wal", "-shm"}) std::filesystem::remove(p.string() + ext);
  return p.string();
}

// Every row of a query, its columns joined by "|" (NULL as "NULL"), through SQLite directly (no Store, no
// migration); an error as the one row when the file does not open or the statement does not prepare.
inline std::vector<std::string> query(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  std::vector<std::string> out;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return {"cannot open " + path};
  }
  sqlite3_busy_timeout(db, 10000);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) out.push_back(sqlite3_errmsg(db));
  while (st && sqlite3_step(st) == SQLITE_ROW) {
    std::string row;
    for (int c = 0; c < sqlite3_column_count(st); ++c) {
      const unsigned char* t = sqlite3_column_text(st, c);
      if (c) row += "|";
      row += t ? reinterpret_cast<const char*>(t) : "NULL";
    }
    out.push_back(row);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

inline planner::NewRun sample_new_run(int i) {
  planner::NewRun r;
  r.plan_json = R"({"model":"tiny-llama","parallel":{"dp":2}})";
  r.name = "sample run " + std::to_string(i);
  r.world_size = 2;
  r.steps = 3;
  r.hardware = R"({"gpu":"cpu"})";
  r.software = R"({"paraplan":"0.1.0"})";
  r.git_revision = "0123456789ab";
  r.host = "sample-host";
  r.predicted_peak_bytes = 2552584.0 + i;
  if (i != 2) r.predicted_step_s = 0.00177;
  return r;
}

// Step `step` of rank `rank` in run `run` (losses fall from 5.5; times in seconds, exact in binary).
inline planner::StepRecord sample_step(int64_t run, int rank, int step) {
  return {run, rank, step, 5.5 - 0.25 * step, 0.015625 * step, 0.0078125, 4096.0 / step};
}

inline std::vector<planner::MemoryRecord> sample_memory(int64_t run, int rank) {
  return {{run, rank, "weights", 476416.0, 476416.0},
          {run, rank, "activations", 646920.0, 646928.0},
          {run, rank, "peak", 2552584.0, 2552592.0},
          {run, rank, "other", std::nullopt, 0.0}};
}

// Schema version 2 (issue 15): evaluation metrics of run 1. Version 3 (issue 13): op-class timings of run 1,
// an imported run (run 4), a probe and a calibration.
inline std::vector<planner::MetricRecord> sample_metrics(int64_t run) {
  return {{run, "test_accuracy", 1, 0.8125, "fraction"}, {run, "test_accuracy", 2, 0.875, "fraction"},
          {run, "epoch_s", 1, 12.5, "s"}};
}
inline std::vector<planner::OpTimeRecord> sample_op_times(int64_t run) {
  return {{run, 0, 2, "gemm", 0.015625, 24}, {run, 0, 2, "comm.all_reduce.dp", 0.0078125, 2},
          {run, 1, 2, "idle", 0.0009765625, 1}};
}
inline planner::ImportedRun sample_imported() {
  planner::ImportedRun r;
  r.run = sample_new_run(4);
  r.run.name = "imported gpt-22b";
  r.run.steps = 0;
  r.source = "published-step-time.csv:13 (korthikanti22-t5)";
  r.measured_step_s = 1.42;
  return r;
}
// From schema version 4 also an all-reduce over 4 nodes of 8 ranks (ranks_per_node).
inline std::vector<planner::ProbeResult> sample_probe_results(int version) {
  std::vector<planner::ProbeResult> r = {{"gemm", "fp32", 256, 256, 256, 0, 1, 0.000244140625, 20},
                                         {"all_reduce", "fp32", 0, 0, 0, 1048576, 2, 0.001953125, 10}};
  if (version >= 4) r.push_back({"all_reduce", "fp32", 0, 0, 0, 1073741824, 32, 0.005859375, 1, 8});
  return r;
}
inline planner::ProbeRecord sample_probe() {
  planner::ProbeRecord p;
  p.device = "cpu";
  p.hardware = R"({"cpu_model":"sample"})";
  p.software = R"({"libtorch":"1.13.1"})";
  p.git_revision = "0123456789ab";
  p.host = "sample-host";
  p.seconds = 42.5;
  return p;
}
inline const char* kSampleProfile = R"({"name":"sample","parameters":{"gemm":{"value":0.5,"source":"fitted"}}})";

// Writes the sample into a store (runs 1, 2 and 3, in that order; from schema version 3 also run 1's
// metrics and the calibration data above, run 4 the imported one). The file of version 2 (written on main
// before issue 13) has no rows in its metrics table.
inline void write_sample(planner::Store& s) {
  const int64_t done = s.create_run(sample_new_run(1));
  s.set_running(done);
  for (int step = 1; step <= 3; ++step)
    for (int rank = 0; rank < 2; ++rank) s.add_step(sample_step(done, rank, step));
  for (int rank = 0; rank < 2; ++rank) s.add_memory(sample_memory(done, rank));
  s.finish_run(done);
  const int64_t failed = s.create_run(sample_new_run(2));
  s.set_running(failed);
  s.add_step(sample_step(failed, 0, 1));
  s.fail_run(failed, "rank 1: killed by signal 9");
  const int64_t running = s.create_run(sample_new_run(3));
  s.set_running(running);
  s.add_step(sample_step(running, 1, 1));
  s.add_metrics(sample_metrics(done));
  s.add_op_times(sample_op_times(done));
  s.import_runs({sample_imported()});
  s.add_probe(sample_probe(), sample_probe_results(planner::store_migrations().back().version));
  s.add_calibration("sample", "cpu", kSampleProfile);
}

}  // namespace paraplan::test

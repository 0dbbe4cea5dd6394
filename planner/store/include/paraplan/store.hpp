#pragma once
// The run store: one SQLite file that holds every executor run — the plan that produced it, the
// planner's prediction for that plan, the hardware and software it ran on, one row per rank and step,
// and the memory per rank and category, predicted beside measured. The executor's ranks write to it
// concurrently (WAL journal, busy timeout, one transaction per write), `paraplan runs` reads it, and
// calibration fits the planner from it.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

struct sqlite3;

namespace paraplan::planner {

enum class RunStatus { created, running, succeeded, failed };
const char* to_string(RunStatus s);

// What the launcher knows before any worker starts.
struct NewRun {
  std::string plan_json;  // the normalized plan (plan_to_json), the contract that produced the run
  std::string name;       // a label, e.g. "tiny-llama dp=2 zero=1"
  int world_size = 1;
  int steps = 0;          // optimizer steps requested
  std::string hardware;   // JSON: device preset and the machine (CPU model, cores)
  std::string software;   // JSON: paraplan version, LibTorch version, compiler
  std::string git_revision;
  std::string host;
  std::optional<double> predicted_peak_bytes;
  std::optional<double> predicted_step_s;  // null until the planner's time model predicts this plan
};

struct RunRecord {
  int64_t id = 0;
  RunStatus status = RunStatus::created;
  std::string created_at, finished_at;  // UTC, ISO 8601
  NewRun run;
  std::optional<double> measured_peak_bytes;   // max over ranks of the counting allocator's peak
  std::optional<double> measured_step_s;       // mean over steps (after the first) of the slowest rank
  std::optional<double> measured_tokens_per_s; // tokens of all ranks per measured step second
  std::optional<double> measured_comm_s;       // mean exposed communication per step, slowest rank
  std::string error;                           // the first failure's message
  // Where the row came from: "executor" (`paraplan run`) or "imported" (`paraplan import`, a published
  // measurement; `source` then says which file, line and publication).
  std::string origin = "executor";
  std::string source;
};

struct StepRecord {
  int64_t run_id = 0;
  int rank = 0;
  int step = 0;             // 1-based optimizer step
  double loss = 0;          // mean loss over the global batch (the same on every rank)
  double step_s = 0;        // wall time of the step on this rank
  double comm_s = 0;        // of which blocked on communication
  double tokens_per_s = 0;  // tokens this rank processed per second of the step
};

struct MemoryRecord {
  int64_t run_id = 0;
  int rank = 0;
  std::string category;  // weights, gradients, master, optimizer, activations, buffers, other, peak
  std::optional<double> predicted_bytes;
  double measured_bytes = 0;
};

// An evaluation result of a run: test accuracy after an epoch, validation loss, task accuracy (the
// teaching demos, `paraplan demo`). step: the epoch or optimizer step it belongs to (0: the whole run).
struct MetricRecord {
  int64_t run_id = 0;
  std::string name;  // e.g. "test_accuracy"
  int step = 0;
  double value = 0;
  std::string unit;  // e.g. "fraction", "nats/token", "s"
};

// Time one rank spent in one class of work during one step (executor/src/op_timer.cpp): gemm, memory
// (memory-bound kernels), attention, optimizer, comm.<collective>.<group> (blocked in it), idle (the
// rest of the step: autograd, data, bookkeeping). The classes of a step add up to its step_s.
struct OpTimeRecord {
  int64_t run_id = 0;
  int rank = 0;
  int step = 0;
  std::string op_class;
  double seconds = 0;
  int64_t calls = 0;
};

// A published measurement to import: the plan as it ran, the step time and where it was published.
struct ImportedRun {
  NewRun run;                // plan_json, name, world_size, hardware, software, predicted_step_s
  std::string source;        // "<file>:<line> (<source column>)", unique per row
  double measured_step_s = 0;
};
struct ImportOutcome {
  int added = 0, already_there = 0;  // rows whose source was imported before are not added twice
};

// One `paraplan probe` of a device: what ran, where, and how long it took.
struct ProbeRecord {
  int64_t id = 0;
  std::string created_at;  // UTC, ISO 8601
  std::string device;      // hardware preset the probe measured (cpu, h100-sxm-80gb, ...)
  std::string hardware, software, git_revision, host;
  double seconds = 0;      // wall time of the whole probe
};
// One measurement of a probe: kind gemm (m, n, k, dtype), memory (bytes read + written by one kernel),
// kernel (a tiny kernel: its fixed cost), all_reduce / all_gather / reduce_scatter / send_recv (bytes =
// nccl-tests' size of the whole buffer, over `ranks` processes). `seconds` is one operation's time (the
// median of `repeats`).
struct ProbeResult {
  std::string kind, dtype;
  double m = 0, n = 0, k = 0, bytes = 0;
  int ranks = 1;
  double seconds = 0;
  int repeats = 0;
  // Collectives: the ranks in each node when the group spans nodes (ranks / ranks_per_node of them); 0
  // when all ranks share one machine, as the probe's own local processes do.
  int ranks_per_node = 0;
  bool operator==(const ProbeResult&) const = default;
};

struct CalibrationRecord {
  int64_t id = 0;
  std::string created_at, name, device;
  std::string profile_json;  // the profile file's document (calibration.hpp), fit rows and residuals included
};

// A schema change: applied once, in order, inside one transaction with the version bump.
struct Migration {
  int version;      // 1, 2, ... (strictly increasing)
  const char* why;  // what it changes, for the log
  const char* sql;  // one or more statements
};
std::span<const Migration> store_migrations();  // the schema this build writes

class Store {
 public:
  // Opens (creating) the file, sets WAL and the busy timeout, and applies missing migrations.
  // A file whose schema is newer than this build's is refused rather than misread.
  explicit Store(const std::string& path);
  Store(const std::string& path, std::span<const Migration> migrations);  // tests: another schema history
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  int schema_version() const;
  const std::string& path() const { return path_; }

  int64_t create_run(const NewRun& r);
  // Inserts a row with this id if it is missing (a rank on another node without the shared file).
  void ensure_run(int64_t id, const NewRun& r);
  void set_running(int64_t run_id);
  void set_software(int64_t run_id, const std::string& software_json);
  // Marks the run failed with `error`; the first failure is kept, later ones (ranks killed because of
  // it) do not overwrite it.
  void fail_run(int64_t run_id, const std::string& error);
  // Marks the run succeeded and fills the measured summary from its step and memory rows.
  void finish_run(int64_t run_id);

  void add_step(const StepRecord& s);
  void add_steps(const std::vector<StepRecord>& rows);  // one transaction for all
  void add_memory(const std::vector<MemoryRecord>& rows);
  void add_metrics(const std::vector<MetricRecord>& rows);

  std::vector<RunRecord> runs() const;
  std::optional<RunRecord> run(int64_t run_id) const;
  std::vector<StepRecord> steps(int64_t run_id) const;
  std::vector<MemoryRecord> memory(int64_t run_id) const;
  std::vector<MetricRecord> metrics(int64_t run_id) const;  // ordered by name, then step

  // Calibration data (store_measurements.cpp). Each call is one transaction: all of it or nothing.
  void add_op_times(const std::vector<OpTimeRecord>& rows);
  std::vector<OpTimeRecord> op_times(int64_t run_id) const;
  // Imported runs become succeeded runs of origin "imported" with their measured step time.
  ImportOutcome import_runs(const std::vector<ImportedRun>& rows);
  int64_t add_probe(const ProbeRecord& probe, const std::vector<ProbeResult>& results);
  std::vector<ProbeRecord> probes() const;
  std::vector<ProbeResult> probe_results(int64_t probe_id) const;
  int64_t add_calibration(const std::string& name, const std::string& device, const std::string& profile_json);
  std::vector<CalibrationRecord> calibrations() const;

 private:
  void migrate(std::span<const Migration> migrations);
  std::string path_;
  sqlite3* db_ = nullptr;
};

}  // namespace paraplan::planner

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

 private:
  void migrate(std::span<const Migration> migrations);
  std::string path_;
  sqlite3* db_ = nullptr;
};

}  // namespace paraplan::planner

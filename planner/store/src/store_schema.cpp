// The store's schema history. Append a Migration to change the schema; never edit one that has
// shipped, because files already migrated past it will not see the edit.
#include "paraplan/store.hpp"

namespace paraplan::planner {

namespace {

constexpr Migration kMigrations[] = {
    {1, "runs, per-step and per-category memory measurements",
     R"sql(
CREATE TABLE runs (
  id                    INTEGER PRIMARY KEY AUTOINCREMENT,
  status                TEXT NOT NULL DEFAULT 'created'
                        CHECK (status IN ('created', 'running', 'succeeded', 'failed')),
  created_at            TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  finished_at           TEXT,
  name                  TEXT NOT NULL DEFAULT '',
  plan_json             TEXT NOT NULL,
  world_size            INTEGER NOT NULL,
  steps                 INTEGER NOT NULL,
  hardware              TEXT NOT NULL DEFAULT '{}',
  software              TEXT NOT NULL DEFAULT '{}',
  git_revision          TEXT NOT NULL DEFAULT '',
  host                  TEXT NOT NULL DEFAULT '',
  predicted_peak_bytes  REAL,
  predicted_step_s      REAL,
  measured_peak_bytes   REAL,
  measured_step_s       REAL,
  measured_tokens_per_s REAL,
  measured_comm_s       REAL,
  error                 TEXT NOT NULL DEFAULT ''
);
CREATE TABLE steps (
  run_id       INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  rank         INTEGER NOT NULL,
  step         INTEGER NOT NULL,
  loss         REAL NOT NULL,
  step_s       REAL NOT NULL,
  comm_s       REAL NOT NULL,
  tokens_per_s REAL NOT NULL,
  PRIMARY KEY (run_id, rank, step)
);
CREATE TABLE memory (
  run_id          INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  rank            INTEGER NOT NULL,
  category        TEXT NOT NULL,
  predicted_bytes REAL,
  measured_bytes  REAL NOT NULL,
  PRIMARY KEY (run_id, rank, category)
);
)sql"},
    {2, "metrics: evaluation results per run (the teaching demos' test accuracy, validation loss, task accuracy)",
     R"sql(
CREATE TABLE metrics (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  name   TEXT NOT NULL,
  step   INTEGER NOT NULL,
  value  REAL NOT NULL,
  unit   TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, name, step)
);
)sql"},
    {3, "calibration data: where a run came from (executor or imported), per-op-class step timings, probes, "
        "calibration profiles",
     R"sql(
ALTER TABLE runs ADD COLUMN origin TEXT NOT NULL DEFAULT 'executor';
ALTER TABLE runs ADD COLUMN source TEXT NOT NULL DEFAULT '';
CREATE TABLE op_times (
  run_id   INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  rank     INTEGER NOT NULL,
  step     INTEGER NOT NULL,
  op_class TEXT NOT NULL,
  seconds  REAL NOT NULL,
  calls    INTEGER NOT NULL,
  PRIMARY KEY (run_id, rank, step, op_class)
);
CREATE TABLE probes (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  device       TEXT NOT NULL,
  hardware     TEXT NOT NULL DEFAULT '{}',
  software     TEXT NOT NULL DEFAULT '{}',
  git_revision TEXT NOT NULL DEFAULT '',
  host         TEXT NOT NULL DEFAULT '',
  seconds      REAL NOT NULL DEFAULT 0
);
CREATE TABLE probe_results (
  probe_id INTEGER NOT NULL REFERENCES probes(id) ON DELETE CASCADE,
  seq      INTEGER NOT NULL,
  kind     TEXT NOT NULL,
  dtype    TEXT NOT NULL DEFAULT '',
  m        REAL NOT NULL DEFAULT 0,
  n        REAL NOT NULL DEFAULT 0,
  k        REAL NOT NULL DEFAULT 0,
  bytes    REAL NOT NULL DEFAULT 0,
  ranks    INTEGER NOT NULL DEFAULT 1,
  seconds  REAL NOT NULL,
  repeats  INTEGER NOT NULL,
  PRIMARY KEY (probe_id, seq)
);
CREATE TABLE calibrations (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  name       TEXT NOT NULL,
  device     TEXT NOT NULL,
  profile    TEXT NOT NULL
);
)sql"},
    {4, "probe results: ranks per node of a collective whose group spans nodes (imported multi-node tables)",
     R"sql(
ALTER TABLE probe_results ADD COLUMN ranks_per_node INTEGER NOT NULL DEFAULT 0;
)sql"},
};

}  // namespace

std::span<const Migration> store_migrations() { return kMigrations; }

}  // namespace paraplan::planner

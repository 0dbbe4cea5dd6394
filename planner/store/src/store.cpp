// The run store on SQLite (https://sqlite.org/wal.html: WAL lets readers run beside one writer;
// busy_timeout makes a writer wait for the lock instead of failing).
#include "paraplan/store.hpp"

#include <string>

#include "sqlite_db.hpp"

namespace paraplan::planner {

namespace {

// Long enough for a few ranks that each hold the write lock for a few milliseconds, short enough that
// a stuck writer becomes an error rather than a hang.
constexpr int kBusyTimeoutMs = 30'000;

RunStatus status_from(const std::string& s) {
  if (s == "running") return RunStatus::running;
  if (s == "succeeded") return RunStatus::succeeded;
  if (s == "failed") return RunStatus::failed;
  return RunStatus::created;
}

constexpr const char* kRunColumns =
    "id, status, created_at, COALESCE(finished_at, ''), name, plan_json, world_size, steps, hardware, software, "
    "git_revision, host, predicted_peak_bytes, predicted_step_s, measured_peak_bytes, measured_step_s, "
    "measured_tokens_per_s, measured_comm_s, error, origin, source";

RunRecord read_run(const sql::Statement& s) {
  RunRecord r;
  r.id = s.integer(0);
  r.status = status_from(s.text(1));
  r.created_at = s.text(2);
  r.finished_at = s.text(3);
  r.run.name = s.text(4);
  r.run.plan_json = s.text(5);
  r.run.world_size = static_cast<int>(s.integer(6));
  r.run.steps = static_cast<int>(s.integer(7));
  r.run.hardware = s.text(8);
  r.run.software = s.text(9);
  r.run.git_revision = s.text(10);
  r.run.host = s.text(11);
  r.run.predicted_peak_bytes = s.optional_real(12);
  r.run.predicted_step_s = s.optional_real(13);
  r.measured_peak_bytes = s.optional_real(14);
  r.measured_step_s = s.optional_real(15);
  r.measured_tokens_per_s = s.optional_real(16);
  r.measured_comm_s = s.optional_real(17);
  r.error = s.text(18);
  r.origin = s.text(19);
  r.source = s.text(20);
  return r;
}

void bind_new_run(sql::Statement& st, int first, const NewRun& r) {
  st.bind(first, r.name)
      .bind(first + 1, r.plan_json)
      .bind(first + 2, r.world_size)
      .bind(first + 3, r.steps)
      .bind(first + 4, r.hardware)
      .bind(first + 5, r.software)
      .bind(first + 6, r.git_revision)
      .bind(first + 7, r.host)
      .bind(first + 8, r.predicted_peak_bytes)
      .bind(first + 9, r.predicted_step_s);
}

// Every row a query returns for one run, read by `read`.
template <class Row, class Read>
std::vector<Row> rows_of(sqlite3* db, int64_t run_id, const char* sql, Read read) {
  sql::Statement q(db, sql);
  q.bind(1, run_id);
  std::vector<Row> out;
  while (q.step()) out.push_back(read(q));
  return out;
}

}  // namespace

const char* to_string(RunStatus s) {
  switch (s) {
    case RunStatus::created: return "created";
    case RunStatus::running: return "running";
    case RunStatus::succeeded: return "succeeded";
    case RunStatus::failed: return "failed";
  }
  return "created";
}

Store::Store(const std::string& path) : Store(path, store_migrations()) {}

Store::Store(const std::string& path, std::span<const Migration> migrations) : path_(path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw sql::Error("cannot open the run store " + path + ": " + msg);
  }
  try {
    // The busy timeout first: every later statement, the pragmas included, waits for a lock instead of
    // failing when several ranks open the file at the same moment.
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    // Switching to WAL needs an exclusive lock once per file; SQLite refuses it without waiting while
    // another opener holds a shared lock, hence the retries. Later openers find WAL already set.
    if (sql::exec_retrying(db_, "PRAGMA journal_mode", kBusyTimeoutMs) != "wal")
      sql::exec_retrying(db_, "PRAGMA journal_mode=WAL", kBusyTimeoutMs);
    sql::exec(db_, "PRAGMA synchronous=NORMAL");
    sql::exec(db_, "PRAGMA foreign_keys=ON");
    migrate(migrations);
  } catch (const sql::Error& e) {
    sqlite3_close(db_);
    db_ = nullptr;
    // "file is not a database" alone does not say which file (--db may name any).
    const std::string what = e.what();
    if (what.find(path) != std::string::npos) throw;
    throw sql::Error("the run store " + path + ": " + what);
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

Store::~Store() { sqlite3_close(db_); }

void Store::migrate(std::span<const Migration> migrations) {
  sql::Transaction tx(db_);  // one writer migrates; the others wait, then find nothing left to do
  sql::exec(db_, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL, "
                 "why TEXT NOT NULL)");
  int current = 0;
  {
    sql::Statement q(db_, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
    if (q.step()) current = static_cast<int>(q.integer(0));
  }
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  if (current > latest)
    throw sql::Error("the run store " + path_ + " has schema version " + std::to_string(current) +
                     ", newer than this paraplan understands (" + std::to_string(latest) +
                     "); use a newer paraplan or another --db file");
  int previous = 0;
  for (const Migration& m : migrations) {
    if (m.version <= previous) throw sql::Error("store migrations out of order at version " + std::to_string(m.version));
    previous = m.version;
    if (m.version <= current) continue;
    sql::exec(db_, m.sql);
    sql::Statement ins(db_, "INSERT INTO schema_version (version, applied_at, why) "
                            "VALUES (?1, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), ?2)");
    ins.bind(1, m.version).bind(2, std::string(m.why)).run();
  }
  tx.commit();
}

int Store::schema_version() const {
  sql::Statement q(db_, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
  return q.step() ? static_cast<int>(q.integer(0)) : 0;
}

int64_t Store::create_run(const NewRun& r) {
  sql::Transaction tx(db_);
  sql::Statement st(db_,
                    "INSERT INTO runs (name, plan_json, world_size, steps, hardware, software, git_revision, host, "
                    "predicted_peak_bytes, predicted_step_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
  bind_new_run(st, 1, r);
  st.run();
  const int64_t id = sqlite3_last_insert_rowid(db_);
  tx.commit();
  return id;
}

void Store::ensure_run(int64_t id, const NewRun& r) {
  sql::Transaction tx(db_);
  sql::Statement st(db_,
                    "INSERT OR IGNORE INTO runs (id, name, plan_json, world_size, steps, hardware, software, "
                    "git_revision, host, predicted_peak_bytes, predicted_step_s) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
  st.bind(1, id);
  bind_new_run(st, 2, r);
  st.run();
  tx.commit();
}

void Store::set_running(int64_t run_id) {
  sql::Transaction tx(db_);
  sql::Statement(db_, "UPDATE runs SET status = 'running' WHERE id = ?1 AND status = 'created'").bind(1, run_id).run();
  tx.commit();
}

void Store::set_software(int64_t run_id, const std::string& software_json) {
  sql::Transaction tx(db_);
  sql::Statement(db_, "UPDATE runs SET software = ?2 WHERE id = ?1").bind(1, run_id).bind(2, software_json).run();
  tx.commit();
}

void Store::fail_run(int64_t run_id, const std::string& error) {
  sql::Transaction tx(db_);
  sql::Statement(db_,
                 "UPDATE runs SET status = 'failed', error = ?2, "
                 "finished_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?1 AND status != 'failed'")
      .bind(1, run_id)
      .bind(2, error)
      .run();
  tx.commit();
}

void Store::finish_run(int64_t run_id) {
  sql::Transaction tx(db_);
  // A step lasts as long as its slowest rank; the first step (allocation, warm-up) is left out of the
  // averages when there are later ones.
  sql::Statement(db_, R"sql(
WITH per_step AS (
  SELECT step, MAX(step_s) AS s, MAX(comm_s) AS c, SUM(tokens_per_s * step_s) AS tokens
  FROM steps WHERE run_id = ?1 GROUP BY step),
chosen AS (
  SELECT * FROM per_step WHERE step > 1 OR (SELECT COUNT(*) FROM per_step) = 1)
UPDATE runs SET
  status = 'succeeded',
  finished_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now'),
  measured_step_s = (SELECT AVG(s) FROM chosen),
  measured_comm_s = (SELECT AVG(c) FROM chosen),
  measured_tokens_per_s = (SELECT SUM(tokens) / SUM(s) FROM chosen),
  measured_peak_bytes = (SELECT MAX(measured_bytes) FROM memory WHERE run_id = ?1 AND category = 'peak')
WHERE id = ?1 AND status != 'failed')sql")
      .bind(1, run_id)
      .run();
  tx.commit();
}

void Store::add_step(const StepRecord& s) { add_steps({s}); }

void Store::add_steps(const std::vector<StepRecord>& rows) {
  sql::insert_rows(db_,
                   "INSERT OR REPLACE INTO steps (run_id, rank, step, loss, step_s, comm_s, tokens_per_s) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                   rows, [](sql::Statement& q, const StepRecord& s) {
    q.bind_all(s.run_id, s.rank, s.step, s.loss, s.step_s, s.comm_s, s.tokens_per_s);
  });
}

void Store::add_metrics(const std::vector<MetricRecord>& rows) {
  sql::insert_rows(db_, "INSERT OR REPLACE INTO metrics (run_id, name, step, value, unit) VALUES (?1, ?2, ?3, ?4, ?5)",
                   rows, [](sql::Statement& q, const MetricRecord& m) {
    q.bind_all(m.run_id, m.name, m.step, m.value, m.unit);
  });
}

void Store::add_memory(const std::vector<MemoryRecord>& rows) {
  sql::insert_rows(db_,
                   "INSERT OR REPLACE INTO memory (run_id, rank, category, predicted_bytes, measured_bytes) "
                   "VALUES (?1, ?2, ?3, ?4, ?5)",
                   rows, [](sql::Statement& q, const MemoryRecord& m) {
    q.bind_all(m.run_id, m.rank, m.category, m.predicted_bytes, m.measured_bytes);
  });
}

std::vector<RunRecord> Store::runs() const {
  sql::Statement q(db_, (std::string("SELECT ") + kRunColumns + " FROM runs ORDER BY id").c_str());
  std::vector<RunRecord> out;
  while (q.step()) out.push_back(read_run(q));
  return out;
}

std::optional<RunRecord> Store::run(int64_t run_id) const {
  sql::Statement q(db_, (std::string("SELECT ") + kRunColumns + " FROM runs WHERE id = ?1").c_str());
  q.bind(1, run_id);
  if (!q.step()) return std::nullopt;
  return read_run(q);
}

std::vector<StepRecord> Store::steps(int64_t run_id) const {
  return rows_of<StepRecord>(db_, run_id,
                             "SELECT run_id, rank, step, loss, step_s, comm_s, tokens_per_s FROM steps "
                             "WHERE run_id = ?1 ORDER BY step, rank",
                             [](const sql::Statement& q) -> StepRecord {
                               return {q.integer(0), static_cast<int>(q.integer(1)), static_cast<int>(q.integer(2)),
                                       q.real(3), q.real(4), q.real(5), q.real(6)};
                             });
}

std::vector<MemoryRecord> Store::memory(int64_t run_id) const {
  return rows_of<MemoryRecord>(db_, run_id,
                               "SELECT run_id, rank, category, predicted_bytes, measured_bytes FROM memory "
                               "WHERE run_id = ?1 ORDER BY rank, category",
                               [](const sql::Statement& q) -> MemoryRecord {
                                 return {q.integer(0), static_cast<int>(q.integer(1)), q.text(2), q.optional_real(3),
                                         q.real(4)};
                               });
}

std::vector<MetricRecord> Store::metrics(int64_t run_id) const {
  return rows_of<MetricRecord>(db_, run_id,
                               "SELECT run_id, name, step, value, unit FROM metrics WHERE run_id = ?1 "
                               "ORDER BY name, step",
                               [](const sql::Statement& q) -> MetricRecord {
                                 return {q.integer(0), q.text(1), static_cast<int>(q.integer(2)), q.real(3), q.text(4)};
                               });
}

}  // namespace paraplan::planner

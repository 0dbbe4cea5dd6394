// The store's calibration data: per-op-class step timings, imported published runs, probes and
// calibration profiles (schema version 3). Every write is one transaction, so an interrupted writer
// leaves all of it or none.
#include <string>

#include "paraplan/store.hpp"
#include "sqlite_db.hpp"

namespace paraplan::planner {

void Store::add_op_times(const std::vector<OpTimeRecord>& rows) {
  sql::Transaction tx(db_);
  sql::Statement st(db_,
                    "INSERT OR REPLACE INTO op_times (run_id, rank, step, op_class, seconds, calls) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  for (const OpTimeRecord& r : rows) {
    st.bind(1, r.run_id).bind(2, r.rank).bind(3, r.step).bind(4, r.op_class).bind(5, r.seconds).bind(6, r.calls);
    st.run();
    st.reset();
  }
  tx.commit();
}

std::vector<OpTimeRecord> Store::op_times(int64_t run_id) const {
  sql::Statement q(db_,
                   "SELECT run_id, rank, step, op_class, seconds, calls FROM op_times WHERE run_id = ?1 "
                   "ORDER BY step, rank, op_class");
  q.bind(1, run_id);
  std::vector<OpTimeRecord> out;
  while (q.step())
    out.push_back({q.integer(0), static_cast<int>(q.integer(1)), static_cast<int>(q.integer(2)), q.text(3), q.real(4),
                   q.integer(5)});
  return out;
}

ImportOutcome Store::import_runs(const std::vector<ImportedRun>& rows) {
  ImportOutcome out;
  sql::Transaction tx(db_);
  sql::Statement seen(db_, "SELECT COUNT(*) FROM runs WHERE origin = 'imported' AND source = ?1");
  sql::Statement ins(db_, R"sql(
INSERT INTO runs (status, finished_at, name, plan_json, world_size, steps, hardware, software, git_revision, host,
                  predicted_peak_bytes, predicted_step_s, measured_step_s, origin, source)
VALUES ('succeeded', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,
        'imported', ?12))sql");
  for (const ImportedRun& r : rows) {
    seen.bind(1, r.source);
    const bool there = seen.step() && seen.integer(0) > 0;
    seen.reset();
    if (there) {
      ++out.already_there;
      continue;
    }
    const NewRun& n = r.run;
    ins.bind(1, n.name)
        .bind(2, n.plan_json)
        .bind(3, n.world_size)
        .bind(4, n.steps)
        .bind(5, n.hardware)
        .bind(6, n.software)
        .bind(7, n.git_revision)
        .bind(8, n.host)
        .bind(9, n.predicted_peak_bytes)
        .bind(10, n.predicted_step_s)
        .bind(11, r.measured_step_s)
        .bind(12, r.source);
    ins.run();
    ins.reset();
    ++out.added;
  }
  tx.commit();
  return out;
}

int64_t Store::add_probe(const ProbeRecord& p, const std::vector<ProbeResult>& results) {
  sql::Transaction tx(db_);
  sql::Statement(db_,
                 "INSERT INTO probes (device, hardware, software, git_revision, host, seconds) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
      .bind(1, p.device)
      .bind(2, p.hardware)
      .bind(3, p.software)
      .bind(4, p.git_revision)
      .bind(5, p.host)
      .bind(6, p.seconds)
      .run();
  const int64_t id = sqlite3_last_insert_rowid(db_);
  sql::Statement st(db_,
                    "INSERT INTO probe_results (probe_id, seq, kind, dtype, m, n, k, bytes, ranks, seconds, repeats) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
  int seq = 0;
  for (const ProbeResult& r : results) {
    st.bind(1, id).bind(2, ++seq).bind(3, r.kind).bind(4, r.dtype).bind(5, r.m).bind(6, r.n).bind(7, r.k);
    st.bind(8, r.bytes).bind(9, r.ranks).bind(10, r.seconds).bind(11, r.repeats);
    st.run();
    st.reset();
  }
  tx.commit();
  return id;
}

std::vector<ProbeRecord> Store::probes() const {
  sql::Statement q(db_,
                   "SELECT id, created_at, device, hardware, software, git_revision, host, seconds FROM probes "
                   "ORDER BY id");
  std::vector<ProbeRecord> out;
  while (q.step())
    out.push_back({q.integer(0), q.text(1), q.text(2), q.text(3), q.text(4), q.text(5), q.text(6), q.real(7)});
  return out;
}

std::vector<ProbeResult> Store::probe_results(int64_t probe_id) const {
  sql::Statement q(db_,
                   "SELECT kind, dtype, m, n, k, bytes, ranks, seconds, repeats FROM probe_results "
                   "WHERE probe_id = ?1 ORDER BY seq");
  q.bind(1, probe_id);
  std::vector<ProbeResult> out;
  while (q.step())
    out.push_back({q.text(0), q.text(1), q.real(2), q.real(3), q.real(4), q.real(5), static_cast<int>(q.integer(6)),
                   q.real(7), static_cast<int>(q.integer(8))});
  return out;
}

int64_t Store::add_calibration(const std::string& name, const std::string& device, const std::string& profile_json) {
  sql::Transaction tx(db_);
  sql::Statement(db_, "INSERT INTO calibrations (name, device, profile) VALUES (?1, ?2, ?3)")
      .bind(1, name)
      .bind(2, device)
      .bind(3, profile_json)
      .run();
  const int64_t id = sqlite3_last_insert_rowid(db_);
  tx.commit();
  return id;
}

std::vector<CalibrationRecord> Store::calibrations() const {
  sql::Statement q(db_, "SELECT id, created_at, name, device, profile FROM calibrations ORDER BY id");
  std::vector<CalibrationRecord> out;
  while (q.step()) out.push_back({q.integer(0), q.text(1), q.text(2), q.text(3), q.text(4)});
  return out;
}

}  // namespace paraplan::planner

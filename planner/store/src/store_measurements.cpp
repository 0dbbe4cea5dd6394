// The store's calibration data: per-op-class step timings, imported published runs, probes and
// calibration profiles (schema version 3). Every write is one transaction, so an interrupted writer
// leaves all of it or none.
#include <string>

#include "paraplan/store.hpp"
#include "sqlite_db.hpp"

namespace paraplan::planner {

namespace {

// A row of op_times / probe_results, its columns in the order the queries below select them.
OpTimeRecord read_op_time(const sql::Statement& r) {
  return {r.integer(0), static_cast<int>(r.integer(1)), static_cast<int>(r.integer(2)), r.text(3), r.real(4),
          r.integer(5)};
}
ProbeResult read_probe_result(const sql::Statement& r) {
  return {r.text(0), r.text(1), r.real(2), r.real(3), r.real(4), r.real(5), static_cast<int>(r.integer(6)), r.real(7),
          static_cast<int>(r.integer(8)), static_cast<int>(r.integer(9))};
}

}  // namespace

void Store::add_op_times(const std::vector<OpTimeRecord>& rows) {
  sql::insert_rows(db_,
                   "INSERT OR REPLACE INTO op_times (run_id, rank, step, op_class, seconds, calls) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                   rows, [](sql::Statement& s, const OpTimeRecord& r) {
    s.bind_all(r.run_id, r.rank, r.step, r.op_class, r.seconds, r.calls);
  });
}

std::vector<OpTimeRecord> Store::op_times(int64_t run_id) const {
  sql::Statement q(db_,
                   "SELECT run_id, rank, step, op_class, seconds, calls FROM op_times WHERE run_id = ?1 "
                   "ORDER BY step, rank, op_class");
  return sql::read_all<OpTimeRecord>(q.bind(1, run_id), read_op_time);
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
    ins.bind_all(n.name, n.plan_json, n.world_size, n.steps, n.hardware, n.software, n.git_revision, n.host,
                 n.predicted_peak_bytes, n.predicted_step_s, r.measured_step_s, r.source);
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
      .bind_all(p.device, p.hardware, p.software, p.git_revision, p.host, p.seconds)
      .run();
  const int64_t id = sqlite3_last_insert_rowid(db_);
  sql::Statement st(db_,
                    "INSERT INTO probe_results (probe_id, seq, kind, dtype, m, n, k, bytes, ranks, seconds, repeats, "
                    "ranks_per_node) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
  int seq = 0;
  sql::run_each(st, results, [&](sql::Statement& s, const ProbeResult& r) {
    s.bind_all(id, ++seq, r.kind, r.dtype, r.m, r.n, r.k, r.bytes, r.ranks, r.seconds, r.repeats, r.ranks_per_node);
  });
  tx.commit();
  return id;
}

std::vector<ProbeRecord> Store::probes() const {
  sql::Statement q(db_,
                   "SELECT id, created_at, device, hardware, software, git_revision, host, seconds FROM probes "
                   "ORDER BY id");
  return sql::read_all<ProbeRecord>(q, [](const sql::Statement& r) -> ProbeRecord {
    return {r.integer(0), r.text(1), r.text(2), r.text(3), r.text(4), r.text(5), r.text(6), r.real(7)};
  });
}

std::vector<ProbeResult> Store::probe_results(int64_t probe_id) const {
  sql::Statement q(db_,
                   "SELECT kind, dtype, m, n, k, bytes, ranks, seconds, repeats, ranks_per_node FROM probe_results "
                   "WHERE probe_id = ?1 ORDER BY seq");
  return sql::read_all<ProbeResult>(q.bind(1, probe_id), read_probe_result);
}

int64_t Store::add_calibration(const std::string& name, const std::string& device, const std::string& profile_json) {
  sql::Transaction tx(db_);
  sql::Statement(db_, "INSERT INTO calibrations (name, device, profile) VALUES (?1, ?2, ?3)")
      .bind_all(name, device, profile_json)
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

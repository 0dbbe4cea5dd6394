// paraplan import FILE.csv [--db FILE]: published measured step times into the run store, so that they
// and the executor's own runs go through the same fit (paraplan calibrate --use imported).
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "commands.hpp"
#include "format.hpp"
#include "paraplan/error.hpp"
#include "paraplan/import.hpp"

namespace paraplan::cli {

using namespace planner;

namespace {

struct ImportOptions {
  std::string file;
  std::string db = "runs.sqlite";
};

// A table of collective timings: one probe of its device, unless the same table was imported before.
int import_probe(const ImportOptions& o, const std::string& text) {
  const ImportedProbe p = imported_probe_from_csv(text, o.file);
  Store store(o.db);
  for (const ProbeRecord& old : store.probes())
    if (old.host == p.probe.host && old.device == p.probe.device && store.probe_results(old.id) == p.results) {
      fmt::print("{} is already in {} (probe {}): nothing imported\n", o.file, o.db, old.id);
      return 0;
    }
  const int64_t id = store.add_probe(p.probe, p.results);
  fmt::print("imported {} collective timing(s) of {} into {} as probe {} of {}\n", p.results.size(), o.file, o.db, id,
             p.probe.device);
  fmt::print("use them: paraplan calibrate --db {} --use probes,imported --gpu {}\n", o.db, p.probe.device);
  return 0;
}

int import_file(const ImportOptions& o) {
  std::ifstream in(o.file);
  if (!in) throw PlanError("file", o.file, "cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  if (is_collective_table(text.str())) return import_probe(o, text.str());
  // Every cell is checked before anything is stored: a bad row leaves the store as it was.
  const std::vector<ImportedRun> rows = imported_runs_from_csv(text.str(), o.file);
  if (rows.empty()) throw PlanError("file", o.file, "holds a header but no rows to import");
  Store store(o.db);
  const ImportOutcome done = store.import_runs(rows);
  double lo = rows.front().measured_step_s, hi = lo;
  for (const ImportedRun& r : rows) {
    lo = std::min(lo, r.measured_step_s);
    hi = std::max(hi, r.measured_step_s);
  }
  fmt::print("imported {} row(s) of {} into {} ({} already there), measured step times {} to {}\n", done.added,
             o.file, o.db, done.already_there, seconds(lo), seconds(hi));
  fmt::print("use them: paraplan calibrate --db {} --use imported --gpu <device>   (paraplan runs --db {} lists them)\n",
             o.db, o.db);
  return 0;
}

}  // namespace

Command add_import_command(CLI::App& app) {
  auto [sub, o] = subcommand<ImportOptions>(app, "import", R"(Import published measured step times into the run store, as runs of origin "imported" that
`paraplan calibrate` fits together with the executor's own runs and probes. FILE.csv has the format of
data/validation/published-step-time.csv: a header line, '#' comments, and per row source, model
(a preset), gpu (a preset), gpus, tp, pp, dp, seq, global_batch, and published_step_s or
published_tflops_per_gpu (optional: micro_batch, virtual_stages, recompute, sequence_parallel,
precision, and layers/hidden/heads/vocab, which must match the preset). Every cell is checked first:
a bad cell names the line and column and nothing is stored. A row imported before is not added twice.
Also read, told apart by their column lines: vTrain's table (data/validation/vtrain-single-node.csv)
and Megatron-Bridge's published throughput (data/validation/megatron-bridge-25.11.csv). A table of
collective timings (nccl-tests figures: '#' comments, then the columns device, collective, ranks, bytes
and time_us (one operation, us) or busbw_gb_per_s (nccl-tests' bus bandwidth, GB/s), as
data/validation/nccl-tests-a100-allreduce.csv) becomes one probe of its device, which calibrate fits
the collective bandwidth and latencies to. With a ranks_per_node column a row's group spans
ranks / ranks_per_node nodes and fits the across-nodes parameters (inter_node, inter_node_latency_s,
inter_node_hop_s), as data/validation/allreduce-b200-4node.csv; without it all ranks share one node.
  paraplan import data/validation/published-step-time.csv --db runs.sqlite
  paraplan import data/validation/megatron-bridge-25.11.csv --db mbridge.sqlite
  paraplan import data/validation/nccl-tests-a100-allreduce.csv --db runs.sqlite)");
  sub->add_option("file", o->file, "CSV file of published runs or collective timings")->required()->check(CLI::ExistingFile);
  sub->add_option("--db", o->db, "run store, a SQLite file (default runs.sqlite)");
  return {sub, [o] { return import_file(*o); }};
}

}  // namespace paraplan::cli

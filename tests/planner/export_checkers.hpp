#pragma once
// Checkers for what `paraplan export` writes, one per target tool, each derived from that tool's own
// argument parser or config schema at a cited version (in each header): the flags and keys it knows, their
// types, and the batch and world-size rules it asserts at start. A checker returns the rules an export
// breaks (empty: the tool would accept it). It reads only the exported text and notes, never the plan, so
// it judges the export as the tool would. Every export the tests produce goes through check_export:
// checked_export (export_fixture.hpp) in the planner tests, the CLI tests on the files paraplan writes.
#include "export_check_accelerate.hpp"
#include "export_check_deepspeed.hpp"
#include "export_check_megatron.hpp"
#include "export_check_torchtitan.hpp"
#include "paraplan/export.hpp"

namespace exportcheck {

// The Slurm script of --format torchrun: sbatch's options (SchedMD/slurm doc/man/man1/sbatch.1 at 284c3b95:
// --nodes, --ntasks-per-node, --gpus-per-node), the srun line that maps srun.1's SLURM_PROCID / SLURM_NTASKS /
// SLURM_LOCALID to the variables `paraplan run` joins under, and the torchrun line for clusters without Slurm.
// Rule: the tasks, the torchrun workers and the embedded plan's ranks are one number.
inline std::vector<std::string> check_sbatch(const std::string& text) {
  Problems out;
  cfgtest::Sbatch b;
  if (auto bad = parse_or_problem(b, cfgtest::parse_sbatch, text, "torchrun: the script does not parse"); !bad.empty())
    return bad;
  static const std::set<std::string> sbatch_options{"job-name", "nodes", "ntasks-per-node", "gpus-per-node"};
  for (const auto& [k, v] : b.options) out.require(sbatch_options.count(k), "torchrun: #SBATCH --" + k + " is not an option checked in sbatch.1");
  const long long nodes = b.options.count("nodes") ? whole(b.options.at("nodes")) : -1;
  const long long tasks = b.options.count("ntasks-per-node") ? whole(b.options.at("ntasks-per-node")) : -1;
  out.require(nodes >= 1 && tasks >= 1, "torchrun: #SBATCH --nodes and --ntasks-per-node must be whole numbers");
  if (b.options.count("gpus-per-node"))
    out.require(b.options.at("gpus-per-node") == b.options.at("ntasks-per-node"), "torchrun: one GPU per task");
  const auto& par = b.plan["parallel"];
  const long long ranks = get_or(par, "dp", 1LL) * get_or(par, "tp", 1LL) * get_or(par, "pp", 1LL) * get_or(par, "cp", 1LL);
  out.require(nodes * tasks == ranks, "torchrun: Slurm tasks != the plan's dp x tp x pp x cp ranks");
  for (const char* env : {"RANK=$SLURM_PROCID", "WORLD_SIZE=$SLURM_NTASKS", "LOCAL_RANK=$SLURM_LOCALID"})
    out.require(b.srun.find(env) != std::string::npos, std::string("torchrun: srun line does not set ") + env);
  out.require(text.find("\nexport MASTER_ADDR=") != std::string::npos && text.find("\nexport MASTER_PORT=") != std::string::npos,
              "torchrun: MASTER_ADDR and MASTER_PORT are not exported");
  const TorchrunLine t = check_torchrun(b.torchrun_words, out);
  out.require(t.world == ranks, "torchrun: torchrun's nnodes x nproc-per-node != the plan's ranks");
  // run.py --no-python: "Useful when the script is not a Python script" — paraplan is a binary.
  out.require(t.switches.count("--no-python") > 0, "torchrun: paraplan is not Python: --no-python is needed");
  return out.list;
}

inline std::vector<std::string> check_export(paraplan::planner::ExportFormat f, const std::string& text,
                                             const std::vector<std::string>& notes) {
  using paraplan::planner::ExportFormat;
  try {
    switch (f) {
      case ExportFormat::megatron: return check_megatron(text);
      case ExportFormat::deepspeed: return check_deepspeed(text, notes);
      case ExportFormat::torchtitan: return check_torchtitan(text);
      case ExportFormat::accelerate: return check_accelerate(text);
      case ExportFormat::torchrun: return check_sbatch(text);
    }
  } catch (const std::exception& e) {  // an export so malformed that a checker could not read it
    return {std::string(paraplan::planner::to_string(f)) + ": the export could not be read: " + e.what()};
  }
  return {"unknown format"};
}

}  // namespace exportcheck

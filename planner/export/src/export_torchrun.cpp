// A Slurm batch script that runs `paraplan run` on every rank of a plan, with the equivalent torchrun
// launch line for clusters without Slurm.
//
// `paraplan run` joins as one rank when RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT are set.
// torchrun sets exactly those for each worker (pytorch/pytorch torch/distributed/run.py @ 010929fd3f40,
// "Environment Variables"); flags --nnodes, --nproc-per-node, --rdzv-backend, --rdzv-endpoint, --rdzv-id
// and --no-python (paraplan is not a Python script) from get_args_parser() there. Under Slurm the script
// maps srun's per-task variables instead (SchedMD/slurm doc/man/man1/srun.1 @ 284c3b95f08a, OUTPUT
// ENVIRONMENT VARIABLES: SLURM_PROCID "the MPI rank", SLURM_NTASKS, SLURM_LOCALID "node local task ID",
// SLURM_JOB_NODELIST), so no Python is needed on the nodes. #SBATCH options --nodes, --ntasks-per-node and
// --gpus-per-node from doc/man/man1/sbatch.1; `scontrol show hostnames` from doc/man/man1/scontrol.1.
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "export_util.hpp"
#include "paraplan/export.hpp"
#include "paraplan/plan_io.hpp"

namespace paraplan::planner {

namespace {

// Port of the rendezvous / c10d store on the first node: torchrun's --master-port default (run.py).
constexpr int kMasterPort = 29500;

// A file name that needs no quoting in the script.
std::string safe_name(const std::string& s) {
  std::string out;
  for (char ch : s) out += (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.') ? ch : '_';
  return out.empty() ? "plan" : out;
}

}  // namespace

ExportResult export_torchrun(const Plan& plan, const ExportOptions& options) {
  const ClusterSpec& c = plan.cluster;
  const ParallelPlan& p = plan.parallel;
  const bool cpu = c.gpu.is_cpu;
  // On CPU all worker processes share one machine (plan-format.md: cluster.gpus_per_node).
  const int nodes = cpu ? 1 : c.nodes();
  const int per_node = cpu ? c.gpus : std::min(c.gpus, c.gpus_per_node);
  const std::string name = safe_name(options.plan_name);
  const std::string plan_file = "${SLURM_SUBMIT_DIR:-.}/" + name + ".run.json";
  const std::string bin = options.binary.empty() ? "paraplan" : options.binary;
  // The plan travels inside the script (after any --set overrides), so every node runs exactly it.
  const std::string doc = plan_to_json(plan).dump(2);
  if (doc.find("PARAPLAN_PLAN_JSON") != std::string::npos)  // the heredoc delimiter must not occur in it
    throw PlanError("model.name", plan.model.name, "must not contain the text PARAPLAN_PLAN_JSON");

  std::string s;
  s += "#!/bin/bash\n";
  s += fmt::format("# Slurm job for `paraplan run`: {} on {} {} = {} node(s) x {} (paraplan export --format torchrun).\n",
                   plan.model.name, c.gpus, cpu ? "CPU worker processes" : "x " + c.gpu.name, nodes, per_node);
  s += fmt::format("# Rank layout: dp {} x tp {} x pp {} x cp {} = {} ranks; consecutive ranks share a node.\n", p.dp,
                   p.tp, p.pp, p.cp, p.gpus());
  s += "#SBATCH --job-name=paraplan-" + name + "\n";
  s += fmt::format("#SBATCH --nodes={}\n", nodes);
  s += fmt::format("#SBATCH --ntasks-per-node={}\n", per_node);  // one task per rank
  if (!cpu) s += fmt::format("#SBATCH --gpus-per-node={}\n", per_node);
  s += "set -euo pipefail\n\n";
  s += "# The plan (normalized, overrides applied), written where every node can read it.\n";
  s += "PLAN=\"" + plan_file + "\"\n";
  s += "cat > \"$PLAN\" <<'PARAPLAN_PLAN_JSON'\n" + doc + "\nPARAPLAN_PLAN_JSON\n\n";
  s += "# Rank 0's node hosts the c10d store.\n";
  s += "export MASTER_ADDR=\"$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)\"\n";
  s += fmt::format("export MASTER_PORT={}\n\n", kMasterPort);
  s += "# One task per rank, ranks in blocks per node; each task becomes rank SLURM_PROCID.\n";
  s += fmt::format("srun --distribution=block bash -c 'RANK=$SLURM_PROCID WORLD_SIZE=$SLURM_NTASKS "
                   "LOCAL_RANK=$SLURM_LOCALID exec {} run \"$0\"' \"$PLAN\"\n",
                   bin);
  s += "\n# Without Slurm: save the plan above as plan.json on every node, then run on each node\n";
  s += fmt::format("#   torchrun --nnodes={} --nproc-per-node={} --rdzv-backend=c10d --rdzv-endpoint=<first-node>:{} "
                   "--rdzv-id=paraplan-{} --no-python {} run plan.json\n",
                   nodes, per_node, kMasterPort, name, bin);

  ExportResult r;
  r.text = s;
  r.notes.push_back(fmt::format("submit with: sbatch {}.sbatch  (the script writes the plan to {}; the submit "
                                "directory must be shared by the nodes)",
                                name, plan_file));
  if (!plan.model.hf_config.empty())
    r.notes.push_back("the plan reads " + plan.model.hf_config + ": that path must exist on every node");
  r.notes.push_back("paraplan run checks at start that the executor supports this plan (parallelism, LoRA)");
  return r;
}

}  // namespace paraplan::planner

// Published CSV rows -> imported runs (the validation table's reader checks every cell).
#include "paraplan/import.hpp"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "paraplan/plan_io.hpp"
#include "paraplan/validation.hpp"

namespace paraplan::planner {

namespace {

// vTrain's measured runs (data/validation/vtrain-single-node.csv) name their columns in a '#' line.
bool is_vtrain_table(const std::string& text) {
  return text.find("# GPUs,global batch,micro batch,hidden size") != std::string::npos;
}

// Megatron-Bridge's published throughput (data/validation/megatron-bridge-25.11.csv) has a system column.
bool is_mbridge_table(const std::string& text) {
  return text.find("\nsystem,model,published_model,") != std::string::npos || text.rfind("system,model,published_model,", 0) == 0;
}

std::vector<PublishedRun> runs_of_table(const std::string& text, const std::string& origin) {
  if (is_vtrain_table(text)) return vtrain_runs_from_csv(text, origin);
  if (is_mbridge_table(text)) return mbridge_runs_from_csv(text, origin);
  return published_runs_from_csv(text, origin);
}

}  // namespace

std::vector<ImportedRun> imported_runs_from_csv(const std::string& text, const std::string& origin) {
  const std::vector<PublishedRun> runs = runs_of_table(text, origin);
  const std::vector<ValidationRow> rows = validate_runs(runs);
  const std::string file = std::filesystem::path(origin).filename().string();
  std::vector<ImportedRun> out;
  for (const ValidationRow& v : rows) {
    const PublishedRun& r = v.run;
    ImportedRun i;
    i.run.plan_json = plan_to_json(r.plan).dump();
    i.run.name = r.model + " " + r.source;
    i.run.world_size = r.plan.cluster.gpus;
    i.run.steps = 0;
    i.run.hardware = nlohmann::json{{"gpu", r.plan.cluster.gpu.id}, {"gpu_name", r.plan.cluster.gpu.name}}.dump();
    i.run.software = nlohmann::json{{"published", r.source}}.dump();
    i.run.predicted_step_s = v.predicted_step_s;
    i.source = file + ":" + std::to_string(r.line) + " (" + r.source + ")";
    i.measured_step_s = v.published_step_s;
    out.push_back(std::move(i));
  }
  return out;
}

}  // namespace paraplan::planner

#pragma once
// Export: a plan written in the launch format of the framework a user already runs (docs/export.md).
// Every flag and key name is verified against the tool's source or documentation at a cited version
// (next to the code that emits it). A plan the target cannot express is a PlanError that names the
// field, the value and why; nothing is dropped silently.
#include <string>
#include <vector>

#include "paraplan/plan.hpp"

namespace paraplan::planner {

enum class ExportFormat { megatron, deepspeed, torchtitan, accelerate, torchrun };

// "megatron", "deepspeed", "torchtitan", "accelerate", "torchrun".
const char* to_string(ExportFormat f);
const std::vector<std::string>& export_format_names();
// Throws PlanError (field "--format") for an unknown name.
ExportFormat parse_export_format(const std::string& name);

struct ExportOptions {
  std::string plan_name = "plan";  // stem used for file names the output refers to (torchrun)
  std::string binary = "paraplan";  // the paraplan executable the torchrun/Slurm launch runs
};

struct ExportResult {
  std::string text;                // the config / flags / script, ready to write to a file
  std::vector<std::string> notes;  // what the user must still do (data, code changes), one line each
};

ExportResult export_plan(const Plan& plan, ExportFormat format, const ExportOptions& options = {});

// One function per target (export_<target>.cpp).
ExportResult export_megatron(const Plan& plan);
ExportResult export_deepspeed(const Plan& plan);
ExportResult export_torchtitan(const Plan& plan);
ExportResult export_accelerate(const Plan& plan);
ExportResult export_torchrun(const Plan& plan, const ExportOptions& options);

}  // namespace paraplan::planner

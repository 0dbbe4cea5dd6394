#pragma once
// Each paraplan subcommand registers itself on the CLI11 app and returns the exit code to use.
#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "paraplan/exec/option_checks.hpp"

namespace paraplan::cli {

using Runner = std::function<int()>;

struct Command {
  CLI::App* sub;
  Runner run;  // called when this subcommand was chosen; returns the exit code
};

// A subcommand and its options, which live as long as the runner that captures them.
template <class Options>
std::pair<CLI::App*, std::shared_ptr<Options>> subcommand(CLI::App& app, const char* name, const std::string& help) {
  return {app.add_subcommand(name, help), std::make_shared<Options>()};
}
using exec::kNonNegative;  // option checks that state the rule (paraplan/exec/option_checks.hpp)
using exec::kPositive;

// The plan file that plan, search, simulate, export and run read, and the --set overrides applied to it
// (`example` shows one, e.g. "parallel.zero=3").
void add_plan_file(CLI::App& sub, std::string& file);
void add_overrides(CLI::App& sub, std::vector<std::string>& overrides, const std::string& example);
// --calibration NAME|FILE: the same as --set cluster.calibration=NAME|FILE, a file relative to here.
void add_calibration_option(CLI::App& sub, std::vector<std::string>& overrides);
}  // namespace paraplan::cli
namespace paraplan::planner {
struct GpuSpec;
struct Calibration;
struct ModelSpec;
}  // namespace paraplan::planner
namespace paraplan::cli {
// Which calibration profile the predictions used, and each time-model parameter of the device under
// it: its value and whether it came from a fit, a measurement or the datasheet (calibration_print.cpp).
void print_calibration(const planner::GpuSpec& gpu, const planner::Calibration& cal);
// For a model with experts: how far the model's step times were off on the published MoE runs
// (validation.hpp moe_track_record), one line; nothing for a dense model.
void print_moe_track_record(const planner::ModelSpec& model);

Command add_plan_command(CLI::App& app);
Command add_models_command(CLI::App& app);
Command add_hardware_command(CLI::App& app);
Command add_search_command(CLI::App& app);
Command add_validate_command(CLI::App& app);
Command add_simulate_command(CLI::App& app);  // simulator: one step event by event (cmd_simulate.cpp)
Command add_export_command(CLI::App& app);  // a plan in another tool's launch format (cmd_export.cpp)
Command add_run_command(CLI::App& app);   // executor: train a plan (cmd_run.cpp)
Command add_runs_command(CLI::App& app);  // executor: the run store (cmd_runs.cpp)
Command add_demo_command(CLI::App& app);  // the textbook chapter's exercises and memory tour (cmd_demo.cpp)
Command add_import_command(CLI::App& app);     // published runs into the store (cmd_import.cpp)
Command add_calibrate_command(CLI::App& app);  // fit the time model to the store (cmd_calibrate.cpp)
Command add_probe_command(CLI::App& app);      // measure this machine (cmd_probe.cpp, paraplan-probe)

}  // namespace paraplan::cli

// paraplan: which way of splitting LLM training across GPUs fits, how fast it runs, and why.
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "paraplan/error.hpp"

int main(int argc, char** argv) {
  using namespace paraplan;
  CLI::App app{
      "paraplan — plans how to split LLM training over GPUs (DP, ZeRO/FSDP, TP+SP, PP, CP, EP, LoRA),\n"
      "tells per GPU and per pipeline stage how much memory it needs and where it goes.\n\n"
      "A plan is one JSON file with four sections: model, training, parallel, cluster\n"
      "(docs/plan-format.md). Start from data/examples/llama3-8b.json:\n"
      "  paraplan plan data/examples/llama3-8b.json\n"
      "  paraplan plan data/examples/llama3-8b.json --set parallel.zero=3 --set training.recompute=full\n"
      "  paraplan models        # model presets      paraplan hardware   # GPU presets"};
  app.require_subcommand(1);
  const std::vector<cli::Command> commands{cli::add_plan_command(app), cli::add_search_command(app),
                                           cli::add_validate_command(app), cli::add_export_command(app),
                                           cli::add_simulate_command(app),
                                           cli::add_models_command(app), cli::add_hardware_command(app),
                                           cli::add_run_command(app), cli::add_runs_command(app),
                                           cli::add_import_command(app), cli::add_calibrate_command(app),
                                           cli::add_probe_command(app),
                                           cli::add_demo_command(app)};
  // A first word that is neither an option nor a command: say which word and what the commands are
  // (CLI11 alone would only say that a subcommand is required).
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    std::string names;
    for (const auto& c : commands) {
      known = known || c.sub->check_name(argv[1]);
      names += (names.empty() ? "" : ", ") + c.sub->get_name();
    }
    if (!known) {
      std::cerr << "paraplan: \"" << argv[1] << "\" is not a command; the commands are " << names
                << ".\nRun with --help for more information.\n";
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    for (const auto& c : commands)
      if (c.sub->parsed()) return c.run();
  } catch (const planner::PlanError& e) {
    std::cerr << "paraplan: invalid input\n";
    for (const auto& v : e.violations()) std::cerr << "  " << v.to_string() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "paraplan: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

#include "commands.hpp"

namespace paraplan::cli {

void add_plan_file(CLI::App& sub, std::string& file) {
  sub.add_option("file", file, "plan JSON file (docs/plan-format.md)")->required()->check(CLI::ExistingFile);
}

void add_overrides(CLI::App& sub, std::vector<std::string>& overrides, const std::string& example) {
  sub.add_option("--set", overrides,
                 "override a field of the plan first, e.g. --set " + example +
                     " (repeatable; the value is parsed as JSON, else taken as a string)");
}

}  // namespace paraplan::cli

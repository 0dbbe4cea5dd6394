#include "commands.hpp"

#include <filesystem>

namespace paraplan::cli {

void add_plan_file(CLI::App& sub, std::string& file) {
  sub.add_option("file", file, "plan JSON file (docs/plan-format.md)")->required()->check(CLI::ExistingFile);
}

void add_overrides(CLI::App& sub, std::vector<std::string>& overrides, const std::string& example) {
  sub.add_option("--set", overrides,
                 "override a field of the plan first, e.g. --set " + example +
                     " (repeatable; the value is parsed as JSON, else taken as a string)");
}

void add_calibration_option(CLI::App& sub, std::vector<std::string>& overrides) {
  sub.add_option_function<std::string>(
         "--calibration",
         [&overrides](const std::string& v) {
           namespace fs = std::filesystem;
           const bool file = fs::path(v).extension() == ".json";
           overrides.push_back("cluster.calibration=" + (file ? fs::absolute(v).lexically_normal().string() : v));
         },
         "time-model calibration: a built-in name (none, published) or a profile file from `paraplan calibrate` "
         "(same as --set cluster.calibration=...)")
      ->type_name("NAME|FILE");
}

}  // namespace paraplan::cli

#include "paraplan/exec/option_checks.hpp"

namespace paraplan::exec {

namespace {

CLI::Validator number_check(const char* name, bool zero_allowed) {
  return CLI::Validator(
      [zero_allowed](std::string& text) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(text, v)) return text + " is not a number";
        if (zero_allowed ? v >= 0 : v > 0) return {};
        return text + (zero_allowed ? " is not >= 0" : " is not > 0");
      },
      name);
}

}  // namespace

const CLI::Validator kPositive = number_check("> 0", false);
const CLI::Validator kNonNegative = number_check(">= 0", true);

}  // namespace paraplan::exec

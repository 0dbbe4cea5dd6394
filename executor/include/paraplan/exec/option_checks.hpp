#pragma once
// Number checks for command-line options whose messages state the rule ("--gpus: 0 is not > 0");
// CLI11's PositiveNumber reports its range as 0 to 1.8e308. Shared by `paraplan` and the workers.
#include <CLI/CLI.hpp>

namespace paraplan::exec {

extern const CLI::Validator kPositive;     // a number > 0
extern const CLI::Validator kNonNegative;  // a number >= 0

}  // namespace paraplan::exec

#pragma once
// LibTorch's errors (c10::Error) carry a C++ backtrace in what(); messages for users leave it out.
#include <exception>
#include <functional>
#include <iostream>
#include <string>

#include "paraplan/error.hpp"

namespace paraplan::exec {

std::string error_message(const std::exception& e);

// A process's main: `body`'s exit code; a PlanError becomes one "WHO: invalid input: ..." line per
// violation on stderr (exit 2), any other error one "WHO: message" line (exit 1).
inline int run_reporting_errors(const std::string& who, const std::function<int()>& body) {
  try {
    return body();
  } catch (const planner::PlanError& e) {
    for (const auto& v : e.violations()) std::cerr << who << ": invalid input: " << v.to_string() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << who << ": " << error_message(e) << "\n";
    return 1;
  }
}

}  // namespace paraplan::exec

#pragma once
// LibTorch's errors (c10::Error) carry a C++ backtrace in what(); messages for users leave it out.
#include <exception>
#include <string>

namespace paraplan::exec {

std::string error_message(const std::exception& e);

}  // namespace paraplan::exec

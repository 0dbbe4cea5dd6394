#pragma once
// The error a weights reader (SafetensorsFile, HfWeights) gives for a bad file or folder.
#include <string>

#include "paraplan/exec/safetensors.hpp"

namespace paraplan::exec::testing {

// What opening `path` as a `Reader` throws as a FormatError; "" when it opens.
template <class Reader>
std::string format_error_of(const std::string& path) {
  try {
    Reader r(path);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "";
}

}  // namespace paraplan::exec::testing

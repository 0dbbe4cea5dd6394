#pragma once
// Helpers for tests of the validation tables' readers: the messages a reader refuses a table with, and a
// row with one cell replaced.
#include <string>
#include <vector>

#include "paraplan/error.hpp"

namespace plantest {

// Every violation `read(table, "<origin>")` throws, as text; none when it accepts the table.
template <class Reader>
std::vector<std::string> csv_errors(Reader read, const std::string& table, const std::string& origin) {
  try {
    read(table, origin);
  } catch (const paraplan::planner::PlanError& e) {
    std::vector<std::string> out;
    for (const auto& v : e.violations()) out.push_back(v.to_string());
    return out;
  }
  return {};
}

// `header` + `row` with cell `col` (0-based) of the row replaced by `value`.
inline std::string row_with_cell(const std::string& header, std::string row, size_t col, const std::string& value) {
  size_t start = 0;
  for (size_t i = 0; i < col; ++i) start = row.find(',', start) + 1;
  const size_t end = row.find_first_of(",\n", start);
  return header + row.replace(start, end - start, value);
}

}  // namespace plantest

#pragma once
// A result table as text cells, with units in the headers: built once by the teaching library and
// shown by the CLI (render) and the GUI (a QTableWidget), so both print the same numbers.
#include <string>
#include <vector>

namespace paraplan::teach {

struct TextTable {
  std::vector<std::string> headers;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> notes;  // lines printed under the table
};

// Columns padded to their widest cell; the first column left-aligned, the others right-aligned.
std::string render(const TextTable& t);

}  // namespace paraplan::teach

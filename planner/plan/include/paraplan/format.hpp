#pragma once
// Numbers as paraplan prints them — the CLI's tables, the GUI's labels, the exports' comments and the
// executor's progress lines all format through these, so that one quantity reads the same everywhere.
// Units: GiB = 2^30 B and MiB = 2^20 B (binary); GB = 1e9 B where a decimal unit is meant (say which).
#include <string>
#include <type_traits>

namespace paraplan::planner::text {

std::string gib(double bytes);         // "14.96" (the unit in the column header)
std::string gib_unit(double bytes);    // "14.96 GiB"
std::string mib(double bytes);         // "512.000" (three decimals: executor memory is exact to the byte)
std::string mib_unit(double bytes);    // "512.000 MiB"
std::string bytes_unit(double bytes);  // "14.96 GiB", or "512.00 MiB" below 1 GiB (never "0.00 GiB")
std::string short_count(double n);     // "8.03 B", "70.60 B", "3.41 M", "512"
std::string percent(double fraction, int decimals = 1);  // "41.5%"
std::string seconds(double s);         // "1.23 s", "45.6 ms", "12.3 us" (three significant digits)

std::string group_thousands(const std::string& digits);  // "1234567" -> "1,234,567"
std::string count(double n);           // "8,030,261,248" (rounded to an integer)
template <class Int, std::enable_if_t<std::is_integral_v<Int>, int> = 0>
std::string count(Int n) {             // exact for every integer
  const std::string s = std::to_string(n);
  if (n >= 0) return group_thousands(s);
  std::string out = group_thousands(s.substr(1));
  out.insert(out.begin(), '-');
  return out;
}

}  // namespace paraplan::planner::text

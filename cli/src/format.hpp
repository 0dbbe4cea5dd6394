#pragma once
// Human-readable numbers with their units (GiB = 2^30 B; GB = 1e9 B; said in every header).
#include <string>

namespace paraplan::cli {

std::string gib(double bytes);          // "14.96" (caller prints the unit in the column header)
std::string gib_unit(double bytes);     // "14.96 GiB"
std::string count(double n);            // "8,030,261,248"
std::string short_count(double n);      // "8.03 B", "70.6 B", "3.41 M"
std::string percent(double fraction, int decimals = 1);
std::string seconds(double s);          // "1.23 s", "45.6 ms", "12.3 us"

}  // namespace paraplan::cli

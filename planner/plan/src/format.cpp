#include "paraplan/format.hpp"

#include <cmath>
#include <cstdio>

namespace paraplan::planner::text {

namespace {

constexpr double kGiB = 1024.0 * 1024 * 1024, kMiB = 1024.0 * 1024;

std::string printf_string(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

}  // namespace

std::string gib(double bytes) { return printf_string("%.2f", bytes / kGiB); }
std::string gib_unit(double bytes) { return gib(bytes) + " GiB"; }
std::string mib(double bytes) { return printf_string("%.3f", bytes / kMiB); }
std::string mib_unit(double bytes) { return mib(bytes) + " MiB"; }

std::string bytes_unit(double bytes) {
  if (std::fabs(bytes) < kGiB) return printf_string("%.2f", bytes / kMiB) + " MiB";
  return gib_unit(bytes);
}

std::string group_thousands(const std::string& digits) {
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string count(double n) {
  std::string out = group_thousands(printf_string("%.0f", std::fabs(n)));
  if (n <= -0.5) out.insert(out.begin(), '-');
  return out;
}

std::string short_count(double n) {
  const double a = std::fabs(n);
  if (a >= 1e12) return printf_string("%.2f T", n / 1e12);
  if (a >= 1e9) return printf_string("%.2f B", n / 1e9);
  if (a >= 1e6) return printf_string("%.2f M", n / 1e6);
  if (a >= 1e3) return printf_string("%.2f K", n / 1e3);
  return printf_string("%.0f", n);
}

std::string percent(double fraction, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f%%", decimals, 100 * fraction);
  return buf;
}

std::string seconds(double s) {
  if (std::fabs(s) < 1e-9) return "0 s";  // rounding residue of sums
  if (s >= 1) return printf_string("%.3g s", s);
  if (s >= 1e-3) return printf_string("%.3g ms", s * 1e3);
  return printf_string("%.3g us", s * 1e6);
}

}  // namespace paraplan::planner::text

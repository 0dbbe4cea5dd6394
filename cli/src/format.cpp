#include "format.hpp"

#include <cmath>
#include <fmt/format.h>

namespace paraplan::cli {

std::string gib(double bytes) { return fmt::format("{:.2f}", bytes / double(1ull << 30)); }
std::string gib_unit(double bytes) { return gib(bytes) + " GiB"; }

std::string count(double n) {
  std::string digits = fmt::format("{:.0f}", std::fabs(n));
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return (n < 0 ? "-" : "") + out;
}

std::string short_count(double n) {
  const double a = std::fabs(n);
  if (a >= 1e12) return fmt::format("{:.2f} T", n / 1e12);
  if (a >= 1e9) return fmt::format("{:.2f} B", n / 1e9);
  if (a >= 1e6) return fmt::format("{:.2f} M", n / 1e6);
  if (a >= 1e3) return fmt::format("{:.2f} K", n / 1e3);
  return fmt::format("{:.0f}", n);
}

std::string percent(double fraction, int decimals) { return fmt::format("{:.{}f}%", 100 * fraction, decimals); }

std::string seconds(double s) {
  if (std::fabs(s) < 1e-9) return "0 s";  // rounding residue of sums
  if (s >= 1) return fmt::format("{:.3g} s", s);
  if (s >= 1e-3) return fmt::format("{:.3g} ms", s * 1e3);
  return fmt::format("{:.3g} us", s * 1e6);
}

}  // namespace paraplan::cli

#include "gui_format.hpp"

#include <QLocale>
#include <cmath>

namespace paraplan::gui {

QString gib(double bytes) {
  // Small amounts in MiB so that they do not read "0.00 GiB".
  if (std::fabs(bytes) < double(1ull << 30)) return QString::number(bytes / double(1ull << 20), 'f', 2) + " MiB";
  return QString::number(bytes / double(1ull << 30), 'f', 2) + " GiB";
}

QString seconds(double s) {
  if (std::fabs(s) < 1e-9) return "0 s";
  if (s >= 1) return QString::number(s, 'g', 4) + " s";
  if (s >= 1e-3) return QString::number(s * 1e3, 'g', 3) + " ms";
  return QString::number(s * 1e6, 'g', 3) + " µs";
}

QString percent(double fraction) { return QString::number(100 * fraction, 'f', 1) + "%"; }

QString count(double n) {
  QLocale c(QLocale::English);
  return c.toString(static_cast<qlonglong>(std::llround(n)));
}

QString shortCount(double n) {
  const double a = std::fabs(n);
  if (a >= 1e12) return QString::number(n / 1e12, 'f', 2) + " T";
  if (a >= 1e9) return QString::number(n / 1e9, 'f', 2) + " B";
  if (a >= 1e6) return QString::number(n / 1e6, 'f', 2) + " M";
  if (a >= 1e3) return QString::number(n / 1e3, 'f', 2) + " K";
  return QString::number(n, 'f', 0);
}

double niceStep(double span, int ticks) {
  if (!(span > 0) || ticks < 1) return 1;
  const double raw = span / ticks;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;  // in [1, 10)
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

}  // namespace paraplan::gui

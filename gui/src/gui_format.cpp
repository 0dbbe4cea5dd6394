#include "gui_format.hpp"

#include <cmath>

#include "paraplan/format.hpp"

namespace paraplan::gui {

namespace text = planner::text;

QString gib(double bytes) { return QString::fromStdString(text::bytes_unit(bytes)); }
QString seconds(double s) { return QString::fromStdString(text::seconds(s)); }
QString percent(double fraction) { return QString::fromStdString(text::percent(fraction)); }
QString count(double n) { return QString::fromStdString(text::count(n)); }
QString shortCount(double n) { return QString::fromStdString(text::short_count(n)); }

double niceStep(double span, int ticks) {
  if (!(span > 0) || ticks < 1) return 1;
  const double raw = span / ticks;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;  // in [1, 10)
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

}  // namespace paraplan::gui

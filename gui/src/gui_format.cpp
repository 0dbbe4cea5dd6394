#include "gui_format.hpp"

#include <QSpinBox>

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

void setCountSuffix(QSpinBox* box, const QString& one, const QString& many) {
  box->setProperty("count_one", one);
  box->setProperty("count_many", many);
  syncCountSuffix(box);
  QObject::connect(box, &QSpinBox::valueChanged, box, [box] { syncCountSuffix(box); });
}

void syncCountSuffix(QSpinBox* box) {
  const QVariant one = box->property("count_one"), many = box->property("count_many");
  if (one.isValid() && many.isValid()) box->setSuffix(box->value() == 1 ? one.toString() : many.toString());
}

}  // namespace paraplan::gui

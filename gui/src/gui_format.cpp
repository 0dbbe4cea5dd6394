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

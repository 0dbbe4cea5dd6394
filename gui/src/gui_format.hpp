#pragma once
// Numbers as the GUI shows them, always with their unit: the planner's one formatter
// (paraplan/format.hpp) as QStrings.
#include <QString>

class QSpinBox;

namespace paraplan::gui {

QString gib(double bytes);            // "14.96 GiB" (below 1 GiB: "512.00 MiB")
QString seconds(double s);            // "1.23 s", "45.6 ms", "12.3 us"
QString percent(double fraction);     // "41.5%"
QString count(double n);              // "8,030,261,248"
QString shortCount(double n);         // "8.03 B"
// A count's unit after the number, singular at 1: "1 epoch", "5 epochs" (the suffix follows the value).
void setCountSuffix(QSpinBox* box, const QString& one, const QString& many);
// After a setValue with the box's signals blocked (a panel showing the plan): the suffix for its value.
void syncCountSuffix(QSpinBox* box);

}  // namespace paraplan::gui

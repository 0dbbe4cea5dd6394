#pragma once
// Memory per pipeline stage as stacked bars by category, with the GPU's capacity as a line. Hovering a
// bar segment shows its bytes and where the number comes from.
#include <QWidget>

#include "plan_session.hpp"

class QChart;
class QChartView;
class QStackedBarSeries;
class QBarSet;
class QLineSeries;
class QBarCategoryAxis;
class QValueAxis;
class QLabel;

namespace paraplan::gui {

class MemoryView : public QWidget {
  Q_OBJECT
 public:
  explicit MemoryView(QWidget* parent = nullptr);
  QChartView* chartView() const { return view_; }
  // GiB shown for category `category` (0 weights .. 6 overheads) of stage `stage`.
  double barValue(int category, int stage) const;
  int stageCount() const;
  void setCompact();  // legend on the side, for small embedded charts

  static constexpr int kCategories = 7;
  static const char* categoryName(int c);
  static const char* categorySource(int c);

 public Q_SLOTS:
  void show(const Evaluation& e);

 private:
  void hovered(int category, bool on, int stage);
  QChart* chart_;
  QChartView* view_;
  QStackedBarSeries* bars_;
  QBarSet* sets_[kCategories];
  QLineSeries* capacity_;
  QBarCategoryAxis* x_;
  QValueAxis* y_;
  QLabel* verdict_;
  planner::MemoryBreakdown last_;
};

}  // namespace paraplan::gui

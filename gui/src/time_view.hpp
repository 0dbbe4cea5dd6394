#pragma once
// The step time split into compute, exposed communication, pipeline bubble and optimizer, with
// throughput and utilisation.
#include <QWidget>

#include "plan_session.hpp"

class QChart;
class QChartView;
class QBarSet;
class QHorizontalStackedBarSeries;
class QValueAxis;
class QLabel;

namespace paraplan::gui {

class TimeView : public QWidget {
  Q_OBJECT
 public:
  explicit TimeView(QWidget* parent = nullptr);
  QChartView* chartView() const { return view_; }
  QString summaryText() const;

 public Q_SLOTS:
  void show(const Evaluation& e);

 private:
  QChart* chart_;
  QChartView* view_;
  QHorizontalStackedBarSeries* bars_;
  static constexpr int kParts = 5;  // compute, exposed comm, bubble, optimizer, host: they sum to the step
  QBarSet* sets_[kParts];
  QValueAxis* x_;
  QLabel* summary_;
};

}  // namespace paraplan::gui

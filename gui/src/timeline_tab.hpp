#pragma once
// The simulated step of the current plan: a per-rank, per-stream Gantt chart (compute, communication,
// bubbles as gaps) and memory over time per pipeline stage; export as a Perfetto (Chrome) trace.
// Simulation runs in a worker thread.
#include <QWidget>
#include <memory>
#include <thread>

#include "paraplan/sim/simulate.hpp"
#include "plan_session.hpp"

class QPushButton;
class QLabel;
class QChartView;
class QChart;

namespace paraplan::gui {

class GanttView;

class TimelineTab : public QWidget {
  Q_OBJECT
 public:
  TimelineTab(PlanSession* session, QWidget* parent = nullptr);
  ~TimelineTab() override;
  const sim::SimResult* result() const { return result_.get(); }
  GanttView* gantt() const { return gantt_; }
  QChartView* chartView() const { return view_; }
  bool running() const { return worker_.joinable(); }
  bool exportTrace(const QString& path) const;
  QLabel* summary() const { return summary_; }

 public Q_SLOTS:
  void simulate();

 Q_SIGNALS:
  void simulated();

 protected:
  void showEvent(QShowEvent* e) override;

 private:
  void done(std::shared_ptr<sim::SimResult> r, const QString& error);
  PlanSession* session_;
  QPushButton *run_, *export_;
  QLabel* summary_;
  GanttView* gantt_;
  QChart* chart_;
  QChartView* view_;
  std::shared_ptr<sim::SimResult> result_;
  std::thread worker_;
  bool stale_ = true;
};

}  // namespace paraplan::gui

#pragma once
// A Gantt chart of a simulated step: one row per (pipeline rank, stream) that has tasks, one box per
// task coloured by its kind; hovering a box names it. Painted directly (tens of thousands of boxes).
#include <QWidget>

#include "paraplan/sim/simulate.hpp"

namespace paraplan::gui {

class GanttView : public QWidget {
  Q_OBJECT
 public:
  explicit GanttView(QWidget* parent = nullptr);
  void setResult(const sim::SimResult* result);  // not owned; null clears
  int rows() const { return static_cast<int>(rows_.size()); }
  static QColor colorOf(sim::TaskKind k);

 protected:
  void paintEvent(QPaintEvent* e) override;
  bool event(QEvent* e) override;  // tooltips
  QSize sizeHint() const override;

 private:
  struct Row {
    int rank;
    sim::Stream stream;
  };
  int rowOf(int rank, sim::Stream s) const;
  double xOf(double t) const;
  const sim::SimResult* result_ = nullptr;
  std::vector<Row> rows_;
  static constexpr int kLabelWidth = 200, kRowHeight = 16, kTop = 22;
};

}  // namespace paraplan::gui

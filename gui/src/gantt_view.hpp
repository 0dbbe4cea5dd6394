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
  double xOf(double t) const;
  int rowHeight() const;  // rows stretch to fill the view, between kRowHeight and kMaxRowHeight
  QString rowLabel(int row) const;
  const sim::SimResult* result_ = nullptr;
  std::vector<Row> rows_;
  int label_width_ = 200;  // the longest row label, measured in the widget's font
  static constexpr int kRowHeight = 16, kMaxRowHeight = 26, kTop = 22, kRight = 12;
};

}  // namespace paraplan::gui

#include "gantt_view.hpp"

#include <QHelpEvent>
#include <QPainter>
#include <QToolTip>
#include <algorithm>
#include <cmath>

#include "gui_format.hpp"
#include "paraplan/plot/chart_qt.hpp"

namespace paraplan::gui {

using namespace sim;

GanttView::GanttView(QWidget* parent) : QWidget(parent) { setMouseTracking(true); }

QColor GanttView::colorOf(TaskKind k) {
  switch (k) {
    case TaskKind::forward: return QColor("#4e79a7");
    case TaskKind::backward: return QColor("#f28e2b");
    case TaskKind::weight: return QColor("#edc948");
    case TaskKind::tp_hidden: return QColor("#b6d7a8");
    case TaskKind::tp_exposed: return QColor("#e15759");
    case TaskKind::p2p: return QColor("#76b7b2");
    case TaskKind::grad_reduce: return QColor("#59a14f");
    case TaskKind::param_gather: return QColor("#b07aa1");
    case TaskKind::grad_scatter: return QColor("#ff9da7");
    case TaskKind::optimizer: return QColor("#9c755f");
    case TaskKind::param_allgather: return QColor("#bab0ac");
  }
  return Qt::gray;
}

void GanttView::setResult(const SimResult* result) {
  result_ = result;
  rows_.clear();
  if (result_) {
    const Graph& g = result_->graph.graph;
    std::vector<char> used(static_cast<size_t>(g.ranks()) * kStreams, 0);
    for (const Task& t : g.tasks()) used[static_cast<size_t>(t.rank) * kStreams + static_cast<int>(t.stream)] = 1;
    for (int r = 0; r < g.ranks(); ++r)
      for (int s = 0; s < kStreams; ++s)
        if (used[static_cast<size_t>(r) * kStreams + s]) rows_.push_back({r, static_cast<Stream>(s)});
  }
  label_width_ = 0;
  for (int r = 0; r < rows(); ++r) label_width_ = std::max(label_width_, fontMetrics().horizontalAdvance(rowLabel(r)));
  label_width_ = std::max(120, label_width_ + 14);
  updateGeometry();
  setMinimumHeight(kTop + rows() * kRowHeight + 10);
  update();
}

QSize GanttView::sizeHint() const { return {900, kTop + std::max(4, rows()) * kRowHeight + 10}; }

QString GanttView::rowLabel(int row) const {
  return QString("stage %1 · %2").arg(rows_[row].rank).arg(to_string(rows_[row].stream));
}

int GanttView::rowHeight() const {
  if (rows() == 0) return kRowHeight;
  return std::clamp((height() - kTop - 10) / rows(), kRowHeight, kMaxRowHeight);
}

double GanttView::xOf(double t) const {
  const double span = result_ && result_->timeline.makespan_s > 0 ? result_->timeline.makespan_s : 1;
  return label_width_ + (width() - label_width_ - kRight) * t / span;
}

void GanttView::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.fillRect(rect(), Qt::white);
  if (!result_) {
    p.drawText(rect(), Qt::AlignCenter, "Simulate the plan to see every rank's streams over one step.");
    return;
  }
  const Graph& g = result_->graph.graph;
  const Timeline& tl = result_->timeline;
  const int rh = rowHeight();
  // Time axis: round steps; labels centred on their tick but kept inside the widget.
  p.setPen(QColor("#666"));
  const double step = plot::nice_step(tl.makespan_s, 8);
  for (int i = 0; i * step <= tl.makespan_s * (1 + 1e-9); ++i) {
    const double t = i * step;
    const int x = static_cast<int>(xOf(t));
    p.drawLine(x, kTop - 4, x, kTop + rows() * rh);
    const int w = 80, left = std::clamp(x - w / 2, label_width_ - w / 2, width() - w - 2);
    p.drawText(QRect(left, 2, w, 16), Qt::AlignCenter, seconds(t));
  }
  for (int r = 0; r < rows(); ++r) {
    const int y = kTop + r * rh;
    if (r % 2 == 0) p.fillRect(QRect(label_width_, y, width() - label_width_, rh), QColor("#f4f4f4"));
    p.setPen(Qt::black);
    p.drawText(QRect(4, y, label_width_ - 8, rh), Qt::AlignVCenter | Qt::AlignLeft, rowLabel(r));
  }
  // row index per (rank, stream), then the boxes
  std::vector<int> row_index(static_cast<size_t>(g.ranks()) * kStreams, -1);
  for (int r = 0; r < rows(); ++r) row_index[static_cast<size_t>(rows_[r].rank) * kStreams + static_cast<int>(rows_[r].stream)] = r;
  p.setPen(Qt::NoPen);
  for (size_t i = 0; i < g.size(); ++i) {
    const Task& t = g.tasks()[i];
    const int row = row_index[static_cast<size_t>(t.rank) * kStreams + static_cast<int>(t.stream)];
    if (row < 0 || t.duration_s <= 0) continue;
    const double x0 = xOf(tl.start_s[i]), x1 = xOf(tl.end_s[i]);
    p.setBrush(colorOf(t.kind));
    p.drawRect(QRectF(x0, kTop + row * rh + 2, std::max(0.6, x1 - x0), rh - 4));
  }
}

bool GanttView::event(QEvent* e) {
  if (e->type() != QEvent::ToolTip || !result_) return QWidget::event(e);
  auto* he = static_cast<QHelpEvent*>(e);
  const int row = (he->pos().y() - kTop) / rowHeight();
  if (row < 0 || row >= rows()) return QWidget::event(e);
  const Graph& g = result_->graph.graph;
  const Timeline& tl = result_->timeline;
  const double span = tl.makespan_s;
  const double t = (he->pos().x() - label_width_) / double(width() - label_width_ - kRight) * span;
  for (size_t i = 0; i < g.size(); ++i) {
    const Task& task = g.tasks()[i];
    if (task.rank != rows_[row].rank || task.stream != rows_[row].stream) continue;
    if (tl.start_s[i] <= t && t <= tl.end_s[i]) {
      QToolTip::showText(he->globalPos(), QString("<b>%1</b> (%2)<br>%3 → %4 (%5)")
                                              .arg(QString::fromStdString(label(task)), to_string(task.kind),
                                                   seconds(tl.start_s[i]), seconds(tl.end_s[i]), seconds(task.duration_s)));
      return true;
    }
  }
  QToolTip::hideText();
  return true;
}

}  // namespace paraplan::gui

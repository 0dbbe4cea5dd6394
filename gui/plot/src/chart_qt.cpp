#include "paraplan/plot/chart_qt.hpp"

#include <QBarCategoryAxis>
#include <QBarSeries>
#include <QBarSet>
#include <QColor>
#include <QHorizontalBarSeries>
#include <QLineSeries>
#include <QLogValueAxis>
#include <QScatterSeries>
#include <QValueAxis>

#include <algorithm>
#include <cmath>
#include <limits>

namespace paraplan::plot {

namespace {

QString q(const std::string& s) { return QString::fromStdString(s); }

// Whole numbers (steps, epochs, workers) tick at whole numbers, not at 1.75 or 3.25.
void integer_ticks(QValueAxis* axis, double x0, double x1) {
  const double step = std::max(1.0, nice_step(x1 - x0, 5));
  axis->setTickType(QValueAxis::TicksDynamic);
  axis->setTickAnchor(std::floor(x0 / step) * step);
  axis->setTickInterval(step);
  axis->setLabelFormat("%d");
}

}  // namespace

double nice_step(double span, int ticks) {
  if (!(span > 0) || ticks < 1) return 1;
  const double raw = span / ticks;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;  // in [1, 10)
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

QChart* make_chart(const teach::Chart& c) {
  auto* chart = new QChart;
  chart->setTitle(q(c.title));
  chart->legend()->setAlignment(Qt::AlignBottom);
  if (c.kind == teach::Chart::Kind::bars) {
    // Long category names (variants) get a line each beside horizontal bars; under columns as narrow as
    // a third of the GUI's width they were elided to "full fin...".
    size_t longest = 0;
    for (const std::string& cat : c.categories) longest = std::max(longest, cat.size());
    const bool horizontal = longest > 6;
    QAbstractBarSeries* series = horizontal ? static_cast<QAbstractBarSeries*>(new QHorizontalBarSeries)
                                            : static_cast<QAbstractBarSeries*>(new QBarSeries);
    double top = 0;
    for (const teach::Series& s : c.series) {
      auto* set = new QBarSet(q(s.name));
      if (horizontal) set->setLabelColor(QColor(0x33, 0x33, 0x33));  // beside the bar: the theme's white is unseen
      for (double y : s.y) {
        *set << y;
        top = std::max(top, y);
      }
      series->append(set);
    }
    series->setLabelsVisible(true);
    series->setLabelsFormat("@value");
    series->setLabelsPrecision(4);
    chart->addSeries(series);
    auto* x = new QBarCategoryAxis;
    for (const std::string& cat : c.categories) x->append(q(cat));
    x->setTitleText(q(c.x_label));
    auto* y = new QValueAxis;
    y->setTitleText(q(c.y_label));
    y->setLabelFormat("%.4g");
    const double end = top > 0 ? top : 1;
    if (horizontal) {
      // Beside the bars, not inside: a bar of 0.9 % of the axis cannot hold "0.936" (the LoRA chart's
      // trainable shares were unreadable). The axis runs 15 % past the longest bar for its label, with
      // round ticks from 0 across a narrow chart (0, 50, 100 rather than crowded labels).
      series->setLabelsPosition(QAbstractBarSeries::LabelsOutsideEnd);
      y->setRange(0, end * 1.15);
      y->setTickType(QValueAxis::TicksDynamic);
      y->setTickAnchor(0);
      y->setTickInterval(nice_step(end, 2));
    } else {
      y->setRange(0, end);  // the value labels sit inside the bars
      y->applyNiceNumbers();
    }
    chart->addAxis(x, horizontal ? Qt::AlignLeft : Qt::AlignBottom);
    chart->addAxis(y, horizontal ? Qt::AlignBottom : Qt::AlignLeft);
    series->attachAxis(x);
    series->attachAxis(y);
    return chart;
  }
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  std::vector<QXYSeries*> lines;
  for (const teach::Series& s : c.series) {
    QXYSeries* line = nullptr;
    if (s.points) {
      auto* scatter = new QScatterSeries;
      scatter->setMarkerSize(9);
      line = scatter;
    } else {
      line = new QLineSeries;
    }
    line->setName(q(s.name));
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      line->append(s.x[i], s.y[i]);
      x0 = std::min(x0, s.x[i]);
      x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]);
      y1 = std::max(y1, s.y[i]);
    }
    if (!s.points) line->setPointsVisible(s.x.size() <= 30);  // a few points (per epoch) show as markers
    chart->addSeries(line);
    lines.push_back(line);
  }
  if (!(x1 >= x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  QAbstractAxis* x = nullptr;
  if (c.log_x && x0 > 0) {
    auto* lx = new QLogValueAxis;
    lx->setRange(x0 / 1.2, x1 * 1.2);
    lx->setLabelFormat("%.3g");
    lx->setMinorTickCount(8);
    x = lx;
  } else {
    auto* vx = new QValueAxis;
    vx->setRange(x0, x1);
    vx->setLabelFormat("%.4g");
    bool whole = true;
    for (const teach::Series& s : c.series)
      for (double v : s.x) whole = whole && v == std::floor(v);
    if (whole) integer_ticks(vx, x0, x1);
    x = vx;
  }
  x->setTitleText(q(c.x_label));
  QAbstractAxis* y = nullptr;
  if (c.log_y && y0 > 0) {
    auto* ly = new QLogValueAxis;
    ly->setRange(c.log_x ? y0 / 1.2 : y0, c.log_x ? y1 * 1.2 : y1);
    ly->setLabelFormat("%.3g");
    y = ly;
  } else {
    auto* vy = new QValueAxis;
    const double pad = 0.05 * (y1 - y0);
    // Values that cannot be negative (a loss, a time) keep the axis at 0: the padding had taken a loss
    // curve's axis below 0 and applyNiceNumbers then to -1 nats.
    vy->setRange(y0 >= 0 ? std::max(0.0, y0 - pad) : y0 - pad, y1 + pad);
    vy->applyNiceNumbers();  // ticks at 5.1, 5.2, ... rather than 5.195, 5.295, ...
    vy->setLabelFormat("%.4g");
    y = vy;
  }
  y->setTitleText(q(c.y_label));
  chart->addAxis(x, Qt::AlignBottom);
  chart->addAxis(y, Qt::AlignLeft);
  for (QXYSeries* l : lines) {
    l->attachAxis(x);
    l->attachAxis(y);
  }
  return chart;
}

}  // namespace paraplan::plot

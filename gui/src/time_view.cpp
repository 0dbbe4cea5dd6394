#include "time_view.hpp"

#include <QBarCategoryAxis>
#include <QBarSet>
#include <QChart>
#include <QChartView>
#include <QHorizontalStackedBarSeries>
#include <QLabel>
#include <QValueAxis>
#include <QVBoxLayout>

#include "gui_format.hpp"

namespace paraplan::gui {

using namespace planner;

TimeView::TimeView(QWidget* parent) : QWidget(parent) {
  chart_ = new QChart;
  chart_->setTitle("One optimizer step");
  chart_->legend()->setAlignment(Qt::AlignBottom);
  bars_ = new QHorizontalStackedBarSeries;
  const char* names[kParts] = {"compute", "exposed communication", "pipeline bubble", "optimizer step",
                               "host (launches, overheads)"};
  // Not the memory chart's red (optimizer states) or green (activations): one colour, one meaning.
  const QColor colors[kParts] = {QColor("#4e79a7"), QColor("#b07aa1"), QColor("#d0d0d0"), QColor("#9c755f"),
                                 QColor("#edc948")};
  for (int i = 0; i < kParts; ++i) {
    sets_[i] = new QBarSet(names[i]);
    sets_[i]->setColor(colors[i]);
    sets_[i]->append(0);
    bars_->append(sets_[i]);
  }
  chart_->addSeries(bars_);
  auto* y = new QBarCategoryAxis;
  y->append("step");
  x_ = new QValueAxis;
  x_->setTitleText("seconds");
  x_->setLabelFormat("%.3g");
  x_->setTickCount(6);
  chart_->addAxis(y, Qt::AlignLeft);
  chart_->addAxis(x_, Qt::AlignBottom);
  bars_->attachAxis(y);
  bars_->attachAxis(x_);
  view_ = new QChartView(chart_);
  view_->setRenderHint(QPainter::Antialiasing);
  chart_->setMargins(QMargins(6, 2, 6, 2));
  view_->setMinimumHeight(230);
  view_->setMaximumHeight(260);
  summary_ = new QLabel;
  summary_->setWordWrap(true);
  summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  auto* lay = new QVBoxLayout(this);
  lay->setContentsMargins(0, 0, 0, 0);
  lay->addWidget(view_);
  lay->addWidget(summary_);
}

void TimeView::show(const Evaluation& e) {
  if (!e.valid) {
    for (auto* s : sets_) s->replace(0, 0);
    summary_->setText({});
    return;
  }
  const StepEstimate& t = e.time;
  const double parts[kParts] = {t.compute_s, std::max(0.0, t.exposed_comm_s), t.bubble_s, t.optimizer_s, t.host_s};
  for (int i = 0; i < kParts; ++i) sets_[i]->replace(0, parts[i]);
  x_->setRange(0, t.step_s * 1.05);
  x_->applyNiceNumbers();
  summary_->setText(
      QString("<b>Step %1</b> = compute %2 + exposed communication %3 (TP/CP/EP %4, pipeline p2p %5, DP %6, "
              "ZeRO-3 gathers %7) + bubble %8 + optimizer %9 + host %16.<br><b>%10 tokens/s</b>, %11 model TFLOP/s per GPU, "
              "<b>MFU %12</b>, HFU %13 (attention FLOPs counted in full; calibration \"%14\"%17). Estimated in %15 ms.")
          .arg(seconds(t.step_s), seconds(t.compute_s), seconds(t.exposed_comm_s), seconds(t.tp_exposed_s),
               seconds(t.pp_p2p_s), seconds(t.dp_exposed_s), seconds(t.zero3_exposed_s), seconds(t.bubble_s),
               seconds(t.optimizer_s))
          .arg(count(t.tokens_per_s))
          .arg(t.tflops_per_gpu, 0, 'f', 1)
          .arg(percent(t.mfu), percent(t.hfu))
          .arg(QString::fromStdString(e.calibration))
          .arg(e.estimate_ms, 0, 'f', 3)
          .arg(seconds(t.host_s))
          // a profile of another GPU (the CLI's note; docs/validation.md, "Other GPUs")
          .arg(e.calibration_device.empty()
                   ? QString()
                   : QString(", fitted on %1 rows, not this GPU's%2")
                         .arg(QString::fromStdString(e.calibration_device),
                              e.own_calibrations.empty()
                                  ? QString()
                                  : QString("; this GPU's own, \"%1\", can be chosen under Cluster, calibration")
                                        .arg(QString::fromStdString(e.own_calibrations.front())))));
  if (e.moe_record && e.moe_record->rows > 0) {  // the CLI's line (calibration_print.cpp)
    const planner::TrackRecord& r = *e.moe_record;
    summary_->setText(summary_->text() +
                      QString("<br>MoE step times are the model's least certain: on %1 published MoE runs (%5 of "
                              "them in no fit) it predicted %2% to %3% of the measured step time, %4 of %1 too fast "
                              "(docs/validation.md).")
                          .arg(r.rows)
                          .arg(QString::asprintf("%+.1f", 100 * r.min_error))
                          .arg(QString::asprintf("%+.1f", 100 * r.max_error))
                          .arg(r.too_fast)
                          .arg(r.in_no_fit));
  }
}

QString TimeView::summaryText() const { return summary_->text(); }

}  // namespace paraplan::gui

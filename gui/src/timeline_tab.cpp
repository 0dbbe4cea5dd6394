#include "timeline_tab.hpp"

#include <QChart>
#include <QChartView>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineSeries>
#include <QPushButton>
#include <QScrollArea>
#include <QSplitter>
#include <QValueAxis>
#include <QVBoxLayout>
#include <fstream>

#include "gantt_view.hpp"
#include "gui_format.hpp"
#include "paraplan/plot/chart_qt.hpp"
#include "paraplan/sim/trace.hpp"

namespace paraplan::gui {

using namespace planner;

TimelineTab::TimelineTab(PlanSession* session, QWidget* parent) : QWidget(parent), session_(session) {
  run_ = new QPushButton("Simulate this plan");
  export_ = new QPushButton("Export Perfetto trace…");
  export_->setEnabled(false);
  export_->setToolTip("Chrome trace JSON: open it in ui.perfetto.dev or chrome://tracing");
  summary_ = new QLabel("Plays one training step of one pipeline event by event: every stage's compute, "
                        "communication and idle time, and its memory over time.");
  summary_->setWordWrap(true);
  auto* bar = new QHBoxLayout;
  bar->addWidget(run_);
  bar->addWidget(export_);
  bar->addStretch(1);

  gantt_ = new GanttView;
  auto* scroll = new QScrollArea;
  scroll->setWidget(gantt_);
  scroll->setWidgetResizable(true);
  auto* legend = new QLabel;
  QStringList keys;
  for (sim::TaskKind k : {sim::TaskKind::forward, sim::TaskKind::backward, sim::TaskKind::weight, sim::TaskKind::tp_exposed,
                          sim::TaskKind::tp_hidden, sim::TaskKind::p2p, sim::TaskKind::grad_reduce, sim::TaskKind::param_gather,
                          sim::TaskKind::grad_scatter, sim::TaskKind::optimizer, sim::TaskKind::param_allgather})
    keys << QString("<span style='background:%1'>&nbsp;&nbsp;&nbsp;</span> %2").arg(GanttView::colorOf(k).name(), sim::to_string(k));
  legend->setText(keys.join("&nbsp;&nbsp; ") + "&nbsp;&nbsp; (white: idle — the pipeline bubble)");
  legend->setWordWrap(true);

  chart_ = new QChart;
  chart_->setTitle("Memory over the step per stage, GiB = 2^30 bytes (total, as the planner counts it)");
  chart_->legend()->setAlignment(Qt::AlignRight);
  view_ = new QChartView(chart_);
  view_->setRenderHint(QPainter::Antialiasing);

  auto* top = new QWidget;
  auto* tv = new QVBoxLayout(top);
  tv->setContentsMargins(0, 0, 0, 0);
  tv->addWidget(scroll, 1);
  tv->addWidget(legend);
  auto* split = new QSplitter(Qt::Vertical);
  split->addWidget(top);
  split->addWidget(view_);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 2);
  auto* lay = new QVBoxLayout(this);
  lay->addLayout(bar);
  lay->addWidget(summary_);
  lay->addWidget(split, 1);

  connect(run_, &QPushButton::clicked, this, &TimelineTab::simulate);
  connect(export_, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getSaveFileName(this, "Perfetto trace", "step-trace.json", "JSON (*.json)");
    if (!f.isEmpty()) exportTrace(f);
  });
  connect(session_, &PlanSession::planChanged, this, [this] {
    stale_ = true;
    if (isVisible()) simulate();
  });
}

TimelineTab::~TimelineTab() {
  if (worker_.joinable()) worker_.join();
}

void TimelineTab::showEvent(QShowEvent* e) {
  QWidget::showEvent(e);
  if (stale_) simulate();
}

void TimelineTab::simulate() {
  if (running()) return;
  if (!session_->evaluation().valid) {
    summary_->setText("The plan breaks a rule (see the messages beside the controls): nothing to simulate.");
    return;
  }
  stale_ = false;
  run_->setEnabled(false);
  summary_->setText("Simulating…");
  const Plan plan = session_->plan();
  worker_ = std::thread([this, plan] {
    auto r = std::make_shared<sim::SimResult>();
    QString error;
    try {
      sim::SimOptions o;
      o.record_memory = true;
      *r = sim::simulate(plan, o);
    } catch (const std::exception& e) {
      error = QString::fromStdString(e.what());
    }
    QMetaObject::invokeMethod(this, [this, r, error] { done(r, error); }, Qt::QueuedConnection);
  });
}

namespace {
// The simulated worst stage against the device, as the memory view says it for the planner's numbers.
QString fitVerdict(const sim::SimResult& r, double capacity) {
  const sim::StageResult* worst = nullptr;
  for (const sim::StageResult& st : r.stages)
    if (!worst || st.peak_bytes > worst->peak_bytes) worst = &st;
  if (!worst) return {};
  const QString what = QString("stage %1 peaks at %2 of %3").arg(worst->stage).arg(gib(worst->peak_bytes), gib(capacity));
  return worst->peak_bytes <= capacity ? QString(" <span style='color:#1b5e20'><b>Fits</b>: %1.</span>").arg(what)
                                       : QString(" <span style='color:#b00020'><b>Does not fit</b>: %1.</span>").arg(what);
}
}  // namespace

void TimelineTab::done(std::shared_ptr<sim::SimResult> r, const QString& error) {
  if (worker_.joinable()) worker_.join();
  run_->setEnabled(true);
  if (!error.isEmpty()) {
    summary_->setText("Cannot simulate: " + error);
    result_.reset();
    gantt_->setResult(nullptr);
    export_->setEnabled(false);
    return;
  }
  result_ = r;
  gantt_->setResult(result_.get());
  export_->setEnabled(true);
  const auto& e = session_->evaluation();
  summary_->setText(QString("<b>Simulated step %1</b> = compute %2 + exposed communication %3 + bubble %4 + optimizer %5 "
                            "(stage %6 finishes last; %7 tasks). The closed form says %8. Peak memory per stage below.")
                        .arg(seconds(r->step_s), seconds(r->compute_s), seconds(r->exposed_comm_s), seconds(r->bubble_s),
                             seconds(r->optimizer_s))
                        .arg(r->critical_stage)
                        .arg(count(static_cast<double>(r->graph.graph.size())))
                        .arg(e.valid ? seconds(e.time.step_s) : QString("—")) +
                    fitVerdict(*r, session_->plan().cluster.gpu.memory_bytes));
  // memory over time: total bytes per stage at every change
  chart_->removeAllSeries();
  for (auto* a : chart_->axes()) {
    chart_->removeAxis(a);
    delete a;
  }
  const int p = static_cast<int>(r->stages.size());
  std::vector<QLineSeries*> series(p);
  for (int s = 0; s < p; ++s) {
    series[s] = new QLineSeries;
    series[s]->setName(QString("stage %1").arg(s));
  }
  double top = 0;
  for (const sim::MemorySample& m : r->timeline.memory) {
    if (m.rank < 0 || m.rank >= p) continue;
    const double gib = r->stages[m.rank].total_bytes(m.bytes) / double(1ull << 30);
    top = std::max(top, gib);
    series[m.rank]->append(m.time_s, gib);
  }
  auto* x = new QValueAxis;
  x->setTitleText("time in the step (s)");
  // The axis ends where the step ends; ticks at round multiples inside it.
  x->setRange(0, std::max(1e-9, r->step_s));
  x->setTickType(QValueAxis::TicksDynamic);
  x->setTickAnchor(0);
  x->setTickInterval(plot::nice_step(std::max(1e-9, r->step_s), 6));
  x->setLabelFormat("%.3g");
  auto* y = new QValueAxis;
  y->setTitleText("GiB");
  y->setRange(0, std::max(1.0, top * 1.1));
  y->applyNiceNumbers();
  chart_->addAxis(x, Qt::AlignBottom);
  chart_->addAxis(y, Qt::AlignLeft);
  for (auto* s : series) {
    chart_->addSeries(s);
    s->attachAxis(x);
    s->attachAxis(y);
  }
  chart_->legend()->setVisible(p <= 16);
  Q_EMIT simulated();
}

bool TimelineTab::exportTrace(const QString& path) const {
  if (!result_) return false;
  std::ofstream out(path.toStdString());
  sim::write_chrome_trace(out, *result_);
  return static_cast<bool>(out);
}

}  // namespace paraplan::gui

#include "main_window.hpp"

#include <algorithm>

#include <QAction>
#include <QChartView>
#include <QDockWidget>
#include <QFile>
#include <QFileDialog>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QPainter>
#include <QScrollArea>
#include <QScrollBar>
#include <QStatusBar>
#include <QSvgGenerator>
#include <QTabWidget>
#include <QVBoxLayout>
#include <nlohmann/json.hpp>

#include "inputs_panel.hpp"
#include "learn_tab.hpp"
#include "memory_view.hpp"
#include "parallel_panel.hpp"
#include "paraplan/plan_io.hpp"
#include "runs_tab.hpp"
#include "search_tab.hpp"
#include "time_view.hpp"
#include "timeline_tab.hpp"

namespace paraplan::gui {

using namespace planner;

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
  setWindowTitle("paraplan — plan, simulate and run LLM training");
  session_ = new PlanSession(this);

  auto* left = new QWidget;
  auto* lv = new QVBoxLayout(left);
  inputs_ = new InputsPanel(session_);
  parallel_ = new ParallelPanel(session_);
  lv->addWidget(inputs_);
  lv->addWidget(parallel_);
  lv->addStretch(1);
  auto* scroll = new QScrollArea;
  scroll->setWidget(left);
  scroll->setWidgetResizable(true);
  scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  // It scrolls vertically only, so it is as wide as its widest row plus the scroll bar; at a fixed 500
  // pixels the bar covered the right edge of the inputs (their arrows).
  scroll->setMinimumWidth(std::max(500, left->minimumSizeHint().width() +
                                            scroll->verticalScrollBar()->sizeHint().width() + 2 * scroll->frameWidth()));
  auto* dock = new QDockWidget("Model, training, cluster and plan");
  dock->setWidget(scroll);
  dock->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable);
  addDockWidget(Qt::LeftDockWidgetArea, dock);

  auto* plan_tab = new QWidget;
  auto* pv = new QVBoxLayout(plan_tab);
  messages_ = new QLabel;
  messages_->setWordWrap(true);
  messages_->setStyleSheet("color: #b00020;");
  messages_->hide();
  memory_ = new MemoryView;
  time_ = new TimeView;
  pv->addWidget(messages_);
  pv->addWidget(memory_, 3);
  pv->addWidget(time_, 1);
  search_ = new SearchTab(session_);
  runs_ = new RunsTab(session_);
  learn_ = new LearnTab(session_);
  timeline_ = new TimelineTab(session_);
  tabs_ = new QTabWidget;
  tabs_->addTab(plan_tab, "Memory && time");
  tabs_->addTab(search_, "Search");
  tabs_->addTab(timeline_, "Timeline");
  tabs_->addTab(runs_, "Runs");
  tabs_->addTab(learn_, "Learn");
  setCentralWidget(tabs_);
  latency_ = new QLabel;
  statusBar()->addPermanentWidget(latency_);

  QMenu* file = menuBar()->addMenu("&File");
  file->addAction("&Open plan…", QKeySequence::Open, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, "Open plan", {}, "Plan (*.json)");
    if (!f.isEmpty()) openPlan(f);
  });
  file->addAction("&Save plan as…", QKeySequence::SaveAs, this, [this] {
    const QString f = QFileDialog::getSaveFileName(this, "Save plan", "plan.json", "Plan (*.json)");
    if (!f.isEmpty()) savePlan(f);
  });
  file->addSeparator();
  file->addAction("Export chart as &PNG…", this, [this] {
    const QString f = QFileDialog::getSaveFileName(this, "Export chart", "chart.png", "PNG (*.png)");
    if (!f.isEmpty()) exportChart(f);
  });
  file->addAction("Export chart as S&VG…", this, [this] {
    const QString f = QFileDialog::getSaveFileName(this, "Export chart", "chart.svg", "SVG (*.svg)");
    if (!f.isEmpty()) exportChart(f);
  });
  file->addSeparator();
  file->addAction("&Quit", QKeySequence::Quit, this, &QWidget::close);

  connect(session_, &PlanSession::evaluated, this, &MainWindow::showEvaluation);
  connect(search_, &SearchTab::planSelected, this, [this](const Plan& p) { session_->setPlan(p); });
  showEvaluation(session_->evaluation());
  resize(1500, 950);
}

void MainWindow::showEvaluation(const Evaluation& e) {
  auto unclaimed = inputs_->showViolations(e.violations);
  unclaimed = parallel_->showViolations(unclaimed);
  QStringList text;
  for (const auto& v : unclaimed) text << QString::fromStdString(v.to_string());
  messages_->setText(text.join("\n"));
  messages_->setVisible(!text.isEmpty());
  memory_->show(e);
  time_->show(e);
  latency_->setText(QString("planner: %1 ms").arg(e.estimate_ms, 0, 'f', 3));
}

bool MainWindow::openPlan(const QString& path) {
  try {
    session_->setPlan(load_plan(path.toStdString()));
    setWindowFilePath(path);
    return true;
  } catch (const PlanError& e) {
    QMessageBox::warning(this, "Open plan", QString("%1 is not a valid plan:\n%2").arg(path, e.what()));
  } catch (const std::exception& e) {
    QMessageBox::warning(this, "Open plan", e.what());
  }
  return false;
}

bool MainWindow::savePlan(const QString& path) {
  QFile f(path);
  if (!f.open(QIODevice::WriteOnly)) {
    QMessageBox::warning(this, "Save plan", "Cannot write " + path);
    return false;
  }
  f.write(QByteArray::fromStdString(plan_to_json(session_->plan()).dump(2) + "\n"));
  return true;
}

QChartView* MainWindow::currentChart() const {
  QWidget* w = tabs_->currentWidget();
  if (w == search_) return search_->chartView();
  if (w == runs_) return runs_->chartView();
  if (w == learn_) return learn_->memoryView()->chartView();
  if (w == timeline_) return timeline_->chartView();
  return memory_->chartView();
}

bool MainWindow::exportChart(const QString& path) {
  QChartView* view = currentChart();
  if (path.endsWith(".svg", Qt::CaseInsensitive)) {
    QSvgGenerator svg;
    svg.setFileName(path);
    svg.setSize(view->size());
    svg.setViewBox(QRect(QPoint(0, 0), view->size()));
    svg.setTitle("paraplan chart");
    QPainter painter(&svg);
    view->render(&painter);
    return painter.end();
  }
  return view->grab().save(path, "PNG");
}

}  // namespace paraplan::gui

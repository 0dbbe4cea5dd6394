#include "runs_tab.hpp"

#include <algorithm>
#include <optional>

#include <QBarCategoryAxis>
#include <QHorizontalBarSeries>
#include <QBarSeries>
#include <QBarSet>
#include <QChart>
#include <QChartView>
#include <QComboBox>
#include <QCoreApplication>
#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QStandardPaths>
#include <QTableWidget>
#include <QTimer>
#include <QValueAxis>
#include <QVBoxLayout>
#include <nlohmann/json.hpp>

#include "gui_format.hpp"
#include "paraplan/plan_io.hpp"

namespace paraplan::gui {

using namespace planner;

namespace {
constexpr double kGiB = double(1ull << 30);
QString opt(const std::optional<double>& v, const std::function<QString(double)>& f) { return v ? f(*v) : "—"; }
}  // namespace

QString RunsTab::paraplanExecutable() {
  const QByteArray env = qgetenv("PARAPLAN_BIN");
  if (!env.isEmpty()) return QString::fromLocal8Bit(env);
  const QString dir = QCoreApplication::applicationDirPath();
  for (const QString& c : {dir + "/paraplan", dir + "/../cli/paraplan"})
    if (QFileInfo(c).isExecutable()) return QFileInfo(c).canonicalFilePath();
  return QStandardPaths::findExecutable("paraplan");
}

RunsTab::RunsTab(PlanSession* session, QWidget* parent) : QWidget(parent), session_(session) {
  path_ = new QLineEdit("runs.sqlite");
  path_->setToolTip("The run store: a SQLite file that `paraplan run --db FILE` writes");
  open_ = new QPushButton("Open store…");
  reload_ = new QPushButton("Reload");
  steps_ = new QSpinBox;
  steps_->setRange(1, 100000);
  steps_->setValue(5);
  setCountSuffix(steps_, " step", " steps");
  run_ = new QPushButton("Run this plan");
  run_->setToolTip("Train the plan on the left with `paraplan run` (CPU workers on this machine, NCCL on GPUs)");
  cancel_ = new QPushButton("Cancel run");
  cancel_->setEnabled(false);
  auto* bar = new QHBoxLayout;
  bar->addWidget(new QLabel("store"));
  bar->addWidget(path_, 1);
  bar->addWidget(open_);
  bar->addWidget(reload_);
  bar->addSpacing(20);
  bar->addWidget(steps_);
  bar->addWidget(run_);
  bar->addWidget(cancel_);

  profile_ = new QComboBox;
  profile_->setToolTip("The calibration profile the “calibrated” columns predict with: none (the hardware's datasheet "
                       "values), a built-in one, or one stored in this store");
  profile_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
  calibrate_ = new QPushButton("Calibrate from these runs");
  calibrate_->setToolTip("Fit the time model's parameters to this store's runs, imported rows and probes (as "
                         "`paraplan calibrate`), keep the profile in the store and beside it as a .json file, and select it");
  auto* cal_bar = new QHBoxLayout;
  cal_bar->addWidget(new QLabel("calibration"));
  cal_bar->addWidget(profile_);
  cal_bar->addWidget(calibrate_);
  cal_bar->addStretch(1);

  table_ = new QTableWidget(0, 14);
  table_->setHorizontalHeaderLabels({"id", "status", "name", "created (UTC)", "predicted peak", "measured peak",
                                     "predicted step (at run)", "measured step", "measured step (median)",
                                     "uncalibrated", "error", "calibrated", "error", "error message"});
  table_->horizontalHeaderItem(kMeasuredMedian)->setToolTip(
      "The step time calibration fits: the median over steps after the first of the slowest rank");
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setSelectionMode(QAbstractItemView::SingleSelection);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->verticalHeader()->hide();
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  table_->horizontalHeader()->setStretchLastSection(true);

  auto* chart = new QChart;
  chart->setTitle("Memory of the selected run (worst rank)");
  predicted_ = new QBarSet("predicted");
  predicted_->setColor(QColor("#4e79a7"));
  measured_ = new QBarSet("measured");
  measured_->setColor(QColor("#f28e2b"));
  // Horizontal bars: the category names (optimizer, activations, ...) get a line each; under columns as
  // narrow as this chart's they were elided to "...".
  auto* series = new QHorizontalBarSeries;
  series->append(predicted_);
  series->append(measured_);
  chart->addSeries(series);
  x_ = new QBarCategoryAxis;
  y_ = new QValueAxis;
  y_->setTitleText("MiB (2^20 bytes)");
  chart->addAxis(x_, Qt::AlignLeft);
  chart->addAxis(y_, Qt::AlignBottom);
  series->attachAxis(x_);
  series->attachAxis(y_);
  chart->legend()->setAlignment(Qt::AlignBottom);
  view_ = new QChartView(chart);
  view_->setRenderHint(QPainter::Antialiasing);

  // Step time in its own chart: milliseconds next to MiB would share no axis.
  auto* step_chart = new QChart;
  step_chart->setTitle("Step time");
  step_chart->legend()->hide();  // the same two colours as the memory chart's legend
  step_predicted_ = new QBarSet("predicted");
  step_predicted_->setColor(predicted_->color());
  step_measured_ = new QBarSet("measured");
  step_measured_->setColor(measured_->color());
  auto* step_series = new QBarSeries;
  step_series->append(step_predicted_);
  step_series->append(step_measured_);
  step_chart->addSeries(step_series);
  auto* step_x = new QBarCategoryAxis;
  step_x->setCategories({"step"});
  step_y_ = new QValueAxis;
  step_y_->setTitleText("ms");
  step_chart->addAxis(step_x, Qt::AlignBottom);
  step_chart->addAxis(step_y_, Qt::AlignLeft);
  step_series->attachAxis(step_x);
  step_series->attachAxis(step_y_);
  step_view_ = new QChartView(step_chart);
  step_view_->setRenderHint(QPainter::Antialiasing);
  step_view_->setMinimumWidth(240);
  detail_ = new QLabel;
  detail_->setWordWrap(true);
  log_ = new QPlainTextEdit;
  log_->setReadOnly(true);
  log_->setPlaceholderText("Output of `paraplan run` appears here.");
  log_->setMaximumBlockCount(5000);

  auto* lower = new QWidget;
  auto* ll = new QHBoxLayout(lower);
  ll->setContentsMargins(0, 0, 0, 0);
  auto* left = new QWidget;
  auto* lv = new QVBoxLayout(left);
  lv->setContentsMargins(0, 0, 0, 0);
  auto* charts = new QHBoxLayout;
  charts->addWidget(view_, 3);
  charts->addWidget(step_view_, 1);
  lv->addLayout(charts, 1);
  lv->addWidget(detail_);
  ll->addWidget(left, 3);
  ll->addWidget(log_, 2);
  auto* split = new QSplitter(Qt::Vertical);
  split->addWidget(table_);
  split->addWidget(lower);
  split->setStretchFactor(0, 1);
  split->setStretchFactor(1, 2);
  auto* lay = new QVBoxLayout(this);
  lay->addLayout(bar);
  lay->addLayout(cal_bar);
  lay->addWidget(split, 1);

  connect(open_, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, "Run store", {}, "SQLite (*.sqlite *.db);;All files (*)");
    if (!f.isEmpty()) openStore(f);
  });
  connect(reload_, &QPushButton::clicked, this, &RunsTab::reload);
  connect(path_, &QLineEdit::returnPressed, this, &RunsTab::reload);
  connect(run_, &QPushButton::clicked, this, &RunsTab::runPlan);
  connect(calibrate_, &QPushButton::clicked, this, &RunsTab::calibrateFromRuns);
  connect(profile_, &QComboBox::currentIndexChanged, this, [this] { refreshPredictions(); });
  connect(cancel_, &QPushButton::clicked, this, &RunsTab::cancelRun);
  connect(table_, &QTableWidget::currentCellChanged, this, [this](int row) { showRun(row); });
  process_.setProcessChannelMode(QProcess::MergedChannels);
  connect(&process_, &QProcess::readyRead, this, [this] {
    log_->appendPlainText(QString::fromLocal8Bit(process_.readAll()).trimmed());
  });
  connect(&process_, &QProcess::finished, this, [this](int code, QProcess::ExitStatus status) {
    log_->appendPlainText(status == QProcess::CrashExit ? "— stopped —" : QString("— finished, exit code %1 —").arg(code));
    run_->setEnabled(true);
    cancel_->setEnabled(false);
    reload();
    Q_EMIT runFinished(status == QProcess::CrashExit ? -1 : code);
  });
  connect(&process_, &QProcess::errorOccurred, this, [this](QProcess::ProcessError e) {
    if (e == QProcess::FailedToStart) {
      log_->appendPlainText("Could not start " + process_.program() + ": " + process_.errorString());
      run_->setEnabled(true);
      cancel_->setEnabled(false);
    }
  });
}

RunsTab::~RunsTab() {
  if (calibrate_worker_.joinable()) calibrate_worker_.join();
  if (running()) {
    process_.kill();
    process_.waitForFinished(2000);
  }
}

void RunsTab::openStore(const QString& path) {
  path_->setText(path);
  reload();
}

int RunsTab::runCount() const { return static_cast<int>(runs_.size()); }

QString RunsTab::detailText() const { return detail_->text(); }

void RunsTab::reload() {
  runs_.clear();
  table_->setRowCount(0);
  const QString path = path_->text();
  reloadProfiles(profile_->currentText());
  if (path.isEmpty() || !QFile::exists(path)) {
    detail_->setText(QString("No store at %1 yet: “Run this plan” creates it.").arg(path));
    return;
  }
  try {
    Store store(path.toStdString());
    runs_ = store.runs();
  } catch (const std::exception& e) {
    detail_->setText("Cannot read the store: " + QString::fromStdString(e.what()));
    return;
  }
  table_->setRowCount(static_cast<int>(runs_.size()));
  for (int i = 0; i < static_cast<int>(runs_.size()); ++i) {
    const RunRecord& r = runs_[i];
    const QStringList cells = {QString::number(r.id), to_string(r.status), QString::fromStdString(r.run.name),
                               QString::fromStdString(r.created_at),
                               opt(r.run.predicted_peak_bytes, [](double b) { return gib(b); }),
                               opt(r.measured_peak_bytes, [](double b) { return gib(b); }),
                               opt(r.run.predicted_step_s, [](double s) { return seconds(s); }),
                               opt(r.measured_step_s, [](double s) { return seconds(s); })};
    for (int c = 0; c < cells.size(); ++c) table_->setItem(i, c, new QTableWidgetItem(cells[c]));
    table_->setItem(i, kError, new QTableWidgetItem(QString::fromStdString(r.error)));
  }
  refreshPredictions();
  if (!runs_.empty()) table_->selectRow(static_cast<int>(runs_.size()) - 1);
}

void RunsTab::showRun(int row) {
  for (QBarSet* set : {predicted_, measured_, step_predicted_, step_measured_}) set->remove(0, set->count());
  if (row < 0 || row >= static_cast<int>(runs_.size())) return;
  const RunRecord& r = runs_[row];
  std::vector<MemoryRecord> mem;
  try {
    mem = Store(path_->text().toStdString()).memory(r.id);
  } catch (const std::exception&) {
  }
  // Worst rank per category: the largest measured value and its prediction.
  QStringList cats;
  QList<qreal> pred, meas;
  for (const MemoryRecord& m : mem) {
    const QString c = QString::fromStdString(m.category);
    int i = static_cast<int>(cats.indexOf(c));
    if (i < 0) {
      cats << c;
      pred << 0;
      meas << 0;
      i = static_cast<int>(cats.size()) - 1;
    }
    if (m.measured_bytes / double(1 << 20) >= meas[i]) {
      meas[i] = m.measured_bytes / double(1 << 20);
      pred[i] = m.predicted_bytes.value_or(0) / double(1 << 20);
    }
  }
  x_->setCategories(cats);
  predicted_->append(pred);
  measured_->append(meas);
  double top = 1;
  for (double v : pred) top = std::max(top, v);
  for (double v : meas) top = std::max(top, v);
  y_->setRange(0, top * 1.1);
  y_->applyNiceNumbers();
  const double step_pred_ms = r.run.predicted_step_s.value_or(0) * 1e3;
  const double step_meas_ms = r.measured_step_s.value_or(0) * 1e3;
  step_predicted_->append(step_pred_ms);
  step_measured_->append(step_meas_ms);
  step_y_->setRange(0, std::max({1.0, step_pred_ms, step_meas_ms}) * 1.1);
  step_y_->applyNiceNumbers();
  detail_->setText(QString("<b>Run %1</b> (%2): step time predicted %3, measured %4; tokens/s measured %5. %6")
                       .arg(r.id).arg(to_string(r.status))
                       .arg(opt(r.run.predicted_step_s, [](double s) { return seconds(s); }))
                       .arg(opt(r.measured_step_s, [](double s) { return seconds(s); }))
                       .arg(opt(r.measured_tokens_per_s, [](double t) { return count(t); }))
                       .arg(r.error.empty() ? QString() : "Error: " + QString::fromStdString(r.error)));
  const QTableWidgetItem* uncal = table_->item(row, kUncalibrated);
  const QTableWidgetItem* cal = table_->item(row, kCalibrated);
  if (uncal && cal && uncal->text() != "—")
    detail_->setText(detail_->text() + QString(" Median step %1; predicted uncalibrated %2 (%3), with %4 %5 (%6).")
                                           .arg(table_->item(row, kMeasuredMedian)->text(), uncal->text(),
                                                table_->item(row, kUncalibratedError)->text(), profile_->currentText(),
                                                cal->text(), table_->item(row, kCalibratedError)->text()));
}

void RunsTab::runPlan() {
  if (running()) return;
  const QString exe = paraplanExecutable();
  if (exe.isEmpty()) {
    log_->appendPlainText("paraplan was not found next to paraplan-gui or on PATH (set PARAPLAN_BIN).");
    return;
  }
  const QString plan_file = tmp_.filePath(QString("plan-%1.json").arg(QDateTime::currentMSecsSinceEpoch()));
  QFile f(plan_file);
  if (!f.open(QIODevice::WriteOnly)) {
    log_->appendPlainText("Cannot write " + plan_file);
    return;
  }
  f.write(QByteArray::fromStdString(plan_to_json(session_->plan()).dump(2)));
  f.close();
  const QStringList args = {"run", plan_file, "--db", QFileInfo(path_->text()).absoluteFilePath(), "--steps",
                            QString::number(steps_->value())};
  log_->appendPlainText(QString("$ %1 %2").arg(exe, args.join(' ')));
  run_->setEnabled(false);
  cancel_->setEnabled(true);
  process_.start(exe, args);  // an argument list: no shell involved
}

void RunsTab::cancelRun() {
  if (!running()) return;
  log_->appendPlainText("Cancelling…");
  process_.terminate();  // SIGTERM: paraplan run stops its workers
  QTimer::singleShot(3000, this, [this] {
    if (running()) process_.kill();
  });
}

}  // namespace paraplan::gui

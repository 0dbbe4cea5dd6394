#include "exercise_panel.hpp"

#include <QCheckBox>
#include <QChartView>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QTableWidget>
#include <QVBoxLayout>
#include <nlohmann/json.hpp>

#include "gui_format.hpp"
#include "paraplan/plot/chart_qt.hpp"
#include "paraplan/store.hpp"
#include "runs_tab.hpp"

namespace paraplan::gui {

namespace {

QString q(const std::string& s) { return QString::fromStdString(s); }

void fill(QTableWidget* t, const teach::TextTable& table) {
  t->clear();
  t->setColumnCount(static_cast<int>(table.headers.size()));
  QStringList headers;
  for (const auto& h : table.headers) headers << q(h);
  t->setHorizontalHeaderLabels(headers);
  t->setRowCount(static_cast<int>(table.rows.size()));
  for (int r = 0; r < static_cast<int>(table.rows.size()); ++r)
    for (int c = 0; c < static_cast<int>(table.rows[static_cast<size_t>(r)].size()); ++c)
      t->setItem(r, c, new QTableWidgetItem(q(table.rows[static_cast<size_t>(r)][static_cast<size_t>(c)])));
  t->resizeColumnsToContents();
}

QString eta(double s) {
  return s < 60 ? QString("%1 s").arg(s, 0, 'f', 0)
                : QString("%1 min %2 s").arg(static_cast<int>(s / 60)).arg(static_cast<int>(s) % 60, 2, 10, QChar('0'));
}

}  // namespace

ExercisePanel::ExercisePanel(Kind kind, QWidget* parent) : QWidget(parent), kind_(kind) {
  const bool lenet = kind == Kind::ddp_lenet;
  store_ = new QLineEdit("runs.sqlite");
  store_->setToolTip("The run store every run of the exercise goes into (paraplan runs --db FILE lists them)");
  list_ = new QLineEdit(lenet ? "1,2,4" : "4,8,16");
  length_ = new QSpinBox;
  samples_ = new QSpinBox;
  quick_ = new QCheckBox("quick: a 0.13 M-parameter model (checks the pipeline; its accuracy means nothing)");
  if (lenet) {
    length_->setRange(1, 100);
    length_->setValue(5);
    setCountSuffix(length_, " epoch", " epochs");
    samples_->setRange(0, 60000);
    samples_->setSingleStep(640);
    samples_->setSpecialValueText("all 60,000");
    setCountSuffix(samples_, " training image", " training images");
    quick_->hide();
  } else {
    length_->setRange(1, 100000);
    length_->setValue(400);
    setCountSuffix(length_, " fine-tuning step per variant", " fine-tuning steps per variant");
    samples_->setRange(1, 100000);
    samples_->setValue(300);
    setCountSuffix(samples_, " pretraining step", " pretraining steps");
  }
  run_ = new QPushButton(lenet ? "Run exercise 1" : "Run exercise 2");
  cancel_ = new QPushButton("Cancel");
  cancel_->setEnabled(false);
  auto* form = new QFormLayout;
  form->addRow("run store", store_);
  form->addRow(lenet ? "worker counts" : "LoRA ranks", list_);
  form->addRow(lenet ? "epochs" : "fine-tuning", length_);
  form->addRow(lenet ? "training images" : "pretraining", samples_);
  if (!lenet) form->addRow("", quick_);
  auto* buttons = new QHBoxLayout;
  buttons->addWidget(run_);
  buttons->addWidget(cancel_);
  buttons->addStretch(1);
  form->addRow(buttons);
  bar_ = new QProgressBar;
  bar_->setRange(0, 1000);
  bar_->setValue(0);
  status_ = new QLabel(lenet ? "LeNet-5 on Fashion-MNIST, data parallel over gloo at each worker count, the same global "
                               "batch (64 images) each time."
                             : "A 3.0 M-parameter LLaMA-shaped model pretrained on the fortunes corpus, then "
                               "fine-tuned to copy 5 random letters, fully and with LoRA (q_proj, v_proj, alpha = 4 r).");
  status_->setWordWrap(true);
  auto* charts = new QHBoxLayout;
  for (int i = 0; i < 3; ++i) {
    auto* v = new QChartView;
    v->setRenderHint(QPainter::Antialiasing);
    v->setMinimumHeight(260);
    // A third of the width each, whatever the chart holds (its size hint had squeezed the line charts
    // beside the bars until their titles and legends were elided).
    v->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    views_.push_back(v);
    charts->addWidget(v, 1);
  }
  table_ = new QTableWidget;
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->verticalHeader()->hide();
  runs_ = new QTableWidget(0, 5);
  runs_->setHorizontalHeaderLabels({"run", "name", "status", "created (UTC)", "result"});
  runs_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  runs_->verticalHeader()->hide();
  runs_->horizontalHeader()->setStretchLastSection(true);
  auto* tables = new QHBoxLayout;
  tables->addWidget(table_, 3);
  tables->addWidget(runs_, 2);
  auto* lay = new QVBoxLayout(this);
  lay->addLayout(form);
  lay->addWidget(bar_);
  lay->addWidget(status_);
  lay->addLayout(charts, 3);
  lay->addLayout(tables, 2);
  refreshCharts();

  redraw_.setInterval(500);  // live charts redraw at most twice a second
  connect(&redraw_, &QTimer::timeout, this, [this] {
    if (dirty_) refreshCharts();
  });
  connect(run_, &QPushButton::clicked, this, &ExercisePanel::start);
  connect(cancel_, &QPushButton::clicked, this, &ExercisePanel::cancel);
  connect(&process_, &QProcess::readyReadStandardOutput, this, [this] {
    pending_ += process_.readAllStandardOutput();
    for (int nl = pending_.indexOf('\n'); nl >= 0; nl = pending_.indexOf('\n')) {
      onLine(pending_.left(nl));
      pending_.remove(0, nl + 1);
    }
  });
  connect(&process_, &QProcess::readyReadStandardError, this,
          [this] { status_->setText(QString::fromLocal8Bit(process_.readAllStandardError()).trimmed()); });
  connect(&process_, &QProcess::finished, this, [this](int code, QProcess::ExitStatus st) {
    redraw_.stop();
    refreshCharts();
    run_->setEnabled(true);
    cancel_->setEnabled(false);
    if (st == QProcess::CrashExit) status_->setText("stopped");
    else if (code == 0) {
      bar_->setValue(1000);
      status_->setText(QString("finished in %1; the runs are in %2").arg(eta(clock_.elapsed() / 1000.0), store_->text()));
    }
    reloadRuns();
    Q_EMIT finished(st == QProcess::CrashExit ? -1 : code);
  });
  connect(&process_, &QProcess::errorOccurred, this, [this](QProcess::ProcessError e) {
    if (e != QProcess::FailedToStart) return;
    status_->setText("paraplan was not found next to paraplan-gui or on PATH (set PARAPLAN_BIN).");
    run_->setEnabled(true);
    cancel_->setEnabled(false);
  });
}

ExercisePanel::~ExercisePanel() {
  if (running()) {
    process_.kill();
    process_.waitForFinished(3000);
  }
}

QStringList ExercisePanel::arguments() const {
  const bool lenet = kind_ == Kind::ddp_lenet;
  QStringList a{"demo", lenet ? "ddp-lenet" : "lora-ranks", "--json", "--db", store_->text()};
  if (lenet) {
    a << "--workers" << list_->text() << "--epochs" << QString::number(length_->value());
    if (samples_->value() > 0) a << "--train-samples" << QString::number(samples_->value());
  } else {
    a << "--ranks" << list_->text() << "--finetune-steps" << QString::number(length_->value()) << "--pretrain-steps"
      << QString::number(samples_->value());
    if (quick_->isChecked()) a << "--quick" << "--eval-problems" << "20";
  }
  return a;
}

double ExercisePanel::totalSteps() const {
  const int n = static_cast<int>(list_->text().split(',', Qt::SkipEmptyParts).size());
  if (kind_ == Kind::ddp_lenet)
    return static_cast<double>((samples_->value() > 0 ? samples_->value() : 60000) / 64) * length_->value() * n;
  return samples_->value() + static_cast<double>(length_->value()) * (1 + n);
}

void ExercisePanel::start() {
  if (running()) return;
  lenet_.clear();
  lora_ = {};
  done_steps_ = 0;
  pending_.clear();
  table_->setRowCount(0);
  bar_->setValue(0);
  status_->setText("starting…");
  refreshCharts();
  run_->setEnabled(false);
  cancel_->setEnabled(true);
  clock_.start();
  redraw_.start();
  process_.start(RunsTab::paraplanExecutable(), arguments());
}

void ExercisePanel::cancel() {
  if (running()) process_.kill();
}

void ExercisePanel::onLine(const QByteArray& line) {
  const nlohmann::json e = nlohmann::json::parse(line.toStdString(), nullptr, false);
  if (e.is_discarded() || !e.is_object()) return;
  const std::string kind = e.value("event", "");
  if (kind == "table") {
    teach::TextTable t;
    t.headers = e.value("headers", std::vector<std::string>{});
    t.rows = e.value("rows", std::vector<std::vector<std::string>>{});
    fill(table_, t);
    return;
  }
  if (kind_ == Kind::ddp_lenet) {
    if (kind == "start") lenet_.emplace_back();
    if (lenet_.empty()) return;
    teach::apply_lenet_event(lenet_.back(), e);
    if (kind == "step") {
      done_steps_ = 0;
      for (const auto& r : lenet_)
        done_steps_ += r.steps.empty() ? 0 : r.steps.back().step;
      const auto& s = lenet_.back().steps.back();
      status_->setText(QString("%1 worker(s): epoch %2/%3, step %4/%5, loss %6 nats/image")
                           .arg(lenet_.back().workers)
                           .arg(s.epoch)
                           .arg(lenet_.back().epochs)
                           .arg(s.step)
                           .arg(lenet_.back().steps_per_epoch * lenet_.back().epochs)
                           .arg(s.loss, 0, 'f', 4));
    }
    if (kind == "epoch") fill(table_, teach::lenet_table(lenet_));
  } else {
    teach::apply_lora_event(lora_, e);
    if (kind == "step") {
      ++done_steps_;
      status_->setText(QString("%1: step %2/%3, loss %4 nats/token")
                           .arg(q(e.value("phase", "")))
                           .arg(e.value("step", 0))
                           .arg(e.value("steps", 0))
                           .arg(e.value("loss", 0.0), 0, 'f', 4));
    }
    if (kind == "result") fill(table_, teach::lora_table(lora_));
  }
  if (kind == "step") {
    const double total = totalSteps();
    bar_->setValue(static_cast<int>(1000 * std::min(1.0, done_steps_ / total)));
    const double elapsed = clock_.elapsed() / 1000.0;
    if (done_steps_ > 0 && done_steps_ < total)
      status_->setText(status_->text() + QString(", ETA %1").arg(eta(elapsed * (total - done_steps_) / done_steps_)));
  }
  dirty_ = true;
}

std::vector<teach::Chart> ExercisePanel::charts() const {
  return kind_ == Kind::ddp_lenet ? teach::lenet_charts(lenet_) : teach::lora_charts(lora_);
}

void ExercisePanel::refreshCharts() {
  dirty_ = false;
  const std::vector<teach::Chart> cs = charts();
  for (size_t i = 0; i < views_.size() && i < cs.size(); ++i) {
    QChart* old = views_[i]->chart();
    views_[i]->setChart(plot::make_chart(cs[i]));
    delete old;
  }
}

int ExercisePanel::chartSeries(int chart) const {
  return static_cast<int>(views_.at(static_cast<size_t>(chart))->chart()->series().size());
}

void ExercisePanel::reloadRuns() {
  runs_->setRowCount(0);
  if (!QFileInfo::exists(store_->text())) return;
  try {
    planner::Store store(store_->text().toStdString());
    const std::string prefix = kind_ == Kind::ddp_lenet ? "demo ddp-lenet" : "demo lora-ranks";
    for (const planner::RunRecord& r : store.runs()) {
      if (r.run.name.rfind(prefix, 0) != 0) continue;
      QString result = "—";
      double acc = -1;
      for (const auto& m : store.metrics(r.id))
        if (m.name == "test_accuracy" || m.name == "task_accuracy") acc = m.value;  // ordered by step: the last
      if (acc >= 0) result = QString("%1% %2").arg(100 * acc, 0, 'f', 2).arg(kind_ == Kind::ddp_lenet ? "test accuracy" : "task accuracy");
      const int row = runs_->rowCount();
      runs_->insertRow(row);
      const QStringList cells{QString::number(r.id), q(r.run.name), planner::to_string(r.status), q(r.created_at), result};
      for (int c = 0; c < cells.size(); ++c) runs_->setItem(row, c, new QTableWidgetItem(cells[c]));
    }
    runs_->resizeColumnsToContents();
  } catch (const std::exception& ex) {
    status_->setText(QString("cannot read %1: %2").arg(store_->text(), ex.what()));
  }
}

}  // namespace paraplan::gui

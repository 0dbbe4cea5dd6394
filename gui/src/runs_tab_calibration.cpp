// The Runs tab's calibration: the profile selector, the calibrated columns and "Calibrate from these
// runs" (runs_tab.hpp; the fit itself is runs_calibration.cpp's).
#include <QComboBox>
#include <QDateTime>
#include <QFile>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSignalBlocker>
#include <QTableWidget>
#include <nlohmann/json.hpp>
#include <optional>

#include "gui_format.hpp"
#include "paraplan/plan_io.hpp"
#include "runs_tab.hpp"

namespace paraplan::gui {

using namespace planner;

void RunsTab::reloadProfiles(const QString& select) {
  const QSignalBlocker quiet(profile_);
  profile_->clear();
  std::optional<Store> store;
  try {
    if (QFile::exists(path_->text())) store.emplace(path_->text().toStdString());
  } catch (const std::exception&) {
  }
  choices_ = profile_choices(store ? &*store : nullptr);
  for (const ProfileChoice& c : choices_) profile_->addItem(c.label);
  const int at = profile_->findText(select);
  profile_->setCurrentIndex(at >= 0 ? at : 0);
}

void RunsTab::refreshPredictions() {
  const int choice = profile_->currentIndex();
  if (choice < 0 || choice >= static_cast<int>(choices_.size())) return;
  table_->horizontalHeaderItem(kCalibrated)->setText("calibrated: " + profile_->currentText());
  std::map<int64_t, RunPrediction> pred;
  try {
    if (!runs_.empty()) pred = predict_runs(Store(path_->text().toStdString()), choices_[choice].profile);
  } catch (const std::exception& e) {
    detail_->setText("Cannot predict the runs: " + QString::fromStdString(e.what()));
  }
  auto error = [](double p, double m) { return percent(p / m - 1); };
  for (int i = 0; i < static_cast<int>(runs_.size()); ++i) {
    const auto it = pred.find(runs_[i].id);
    QStringList cells{"—", "—", "—", "—", "—"};  // a run the fit cannot use (failed, still running, one rank)
    if (it != pred.end()) {
      const RunPrediction& p = it->second;
      cells = {seconds(p.measured_s), seconds(p.uncalibrated_s), error(p.uncalibrated_s, p.measured_s),
               seconds(p.calibrated_s), error(p.calibrated_s, p.measured_s)};
    }
    for (int c = 0; c < cells.size(); ++c) table_->setItem(i, kMeasuredMedian + c, new QTableWidgetItem(cells[c]));
  }
}

void RunsTab::calibrateFromRuns() {
  if (calibrating()) return;
  const QString path = path_->text();
  if (path.isEmpty() || !QFile::exists(path)) {
    detail_->setText(QString("Cannot calibrate: no store at %1 (“Run this plan” creates one).").arg(path));
    Q_EMIT calibrationFinished();
    return;
  }
  // The device of the selected run (a store may hold runs of several); empty: the store's only one.
  std::string device;
  const int row = table_->currentRow();
  if (row >= 0 && row < static_cast<int>(runs_.size())) {
    const QString cell = table_->item(row, kMeasuredMedian) ? table_->item(row, kMeasuredMedian)->text() : "—";
    try {
      if (cell != "—") device = planner::plan_from_json(nlohmann::json::parse(runs_[row].run.plan_json)).cluster.gpu.id;
    } catch (const std::exception&) {
      // a stored plan this paraplan cannot read: the fit names the devices there are, if several
    }
  }
  const std::string name = "runs-" + QDateTime::currentDateTimeUtc().toString("yyyyMMdd-HHmmss").toStdString();
  calibrate_->setEnabled(false);
  detail_->setText("Calibrating from the runs of " + path + "…");
  // Off the GUI thread: a fit with its cross-validation takes a second or more.
  calibrate_worker_ = std::thread([this, path, device, name] {
    StoreCalibration out;
    QString error;
    try {
      out = calibrate_store(path, device, name);
    } catch (const std::exception& e) {
      error = QString::fromStdString(e.what());  // PlanError: field, value and rule
    }
    QMetaObject::invokeMethod(this, [this, out, error] { calibrationDone(out, error); }, Qt::QueuedConnection);
  });
}

void RunsTab::calibrationDone(const StoreCalibration& out, const QString& error) {
  if (calibrate_worker_.joinable()) calibrate_worker_.join();
  calibrate_->setEnabled(true);
  if (error.isEmpty()) {
    reloadProfiles(out.choice.label);
    refreshPredictions();
    detail_->setText(out.summary);
  } else {
    detail_->setText("Cannot calibrate: " + error);
  }
  Q_EMIT calibrationFinished();
}

}  // namespace paraplan::gui

#pragma once
// A paraplan run store (SQLite): its runs, predicted vs measured memory and step time, and a button
// that trains the current plan with `paraplan run` as a child process (argument list, no shell),
// streaming its output, cancellable. Each run's step time is also predicted uncalibrated and with the
// profile the selector names; "Calibrate from these runs" fits one (runs_calibration.hpp).
#include <QProcess>
#include <QTemporaryDir>
#include <QWidget>
#include <thread>
#include <vector>

#include "paraplan/store.hpp"
#include "plan_session.hpp"
#include "runs_calibration.hpp"

class QComboBox;
class QLineEdit;
class QPushButton;
class QSpinBox;
class QTableWidget;
class QPlainTextEdit;
class QChartView;
class QBarSet;
class QBarCategoryAxis;
class QValueAxis;
class QLabel;

namespace paraplan::gui {

class RunsTab : public QWidget {
  Q_OBJECT
 public:
  RunsTab(PlanSession* session, QWidget* parent = nullptr);
  ~RunsTab() override;

  void openStore(const QString& path);
  int runCount() const;
  QTableWidget* table() const { return table_; }
  bool running() const { return process_.state() != QProcess::NotRunning; }
  QProcess& process() { return process_; }
  QPlainTextEdit* log() const { return log_; }
  QChartView* chartView() const { return view_; }
  // Predicted [0] and measured [1] step time of the shown run, in ms, as the step chart draws them.
  QBarSet* stepBars(int which) const { return which == 0 ? step_predicted_ : step_measured_; }
  // The columns after the measured step: measured as calibrate takes it, uncalibrated, its error, with
  // the selected profile, its error; then the run's error message.
  enum Column { kMeasuredMedian = 8, kUncalibrated, kUncalibratedError, kCalibrated, kCalibratedError, kError };
  QComboBox* profileSelector() const { return profile_; }
  QPushButton* calibrateButton() const { return calibrate_; }
  QString detailText() const;
  bool calibrating() const { return calibrate_worker_.joinable(); }
  // The paraplan binary: $PARAPLAN_BIN, next to this program, ../cli/ of it, or on PATH.
  static QString paraplanExecutable();

 public Q_SLOTS:
  void reload();
  void runPlan();
  void cancelRun();
  void showRun(int row);
  // Fits a profile to the store's runs of the selected run's device (off the GUI thread), stores it and
  // selects it; calibrationFinished() when done, the outcome or the error in the detail text.
  void calibrateFromRuns();
  void refreshPredictions();  // the calibrated columns under the selected profile

 Q_SIGNALS:
  void runFinished(int exit_code);
  void calibrationFinished();

 private:
  PlanSession* session_;
  QLineEdit* path_;
  QPushButton *open_, *reload_, *run_, *cancel_, *calibrate_;
  QComboBox* profile_;
  std::vector<ProfileChoice> choices_;
  QSpinBox* steps_;
  QTableWidget* table_;
  QPlainTextEdit* log_;
  QChartView *view_, *step_view_;
  QBarSet *predicted_, *measured_, *step_predicted_, *step_measured_;
  QBarCategoryAxis* x_;
  QValueAxis *y_, *step_y_;
  QLabel* detail_;
  QProcess process_;
  QTemporaryDir tmp_;
  std::vector<planner::RunRecord> runs_;
  void reloadProfiles(const QString& select);
  void calibrationDone(const StoreCalibration& out, const QString& error);
  std::thread calibrate_worker_;
};

}  // namespace paraplan::gui

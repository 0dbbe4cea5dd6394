#pragma once
// One of the textbook chapter's exercises in the Learn tab: its options, a Run / Cancel button that
// starts `paraplan demo <exercise> --json` as a child process (an argument list, no shell), a progress
// bar with the epoch / step and an ETA, live charts (the teaching library's chart descriptions drawn by
// gui/plot), the result table, and the exercise's runs in the store.
#include <QElapsedTimer>
#include <QProcess>
#include <QTimer>
#include <QWidget>
#include <vector>

#include "paraplan/teach/lenet_demo.hpp"
#include "paraplan/teach/lora_demo.hpp"

class QCheckBox;
class QChartView;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTableWidget;

namespace paraplan::gui {

class ExercisePanel : public QWidget {
  Q_OBJECT
 public:
  enum class Kind { ddp_lenet, lora_ranks };
  explicit ExercisePanel(Kind kind, QWidget* parent = nullptr);
  ~ExercisePanel() override;

  // The command line the Run button starts (without the executable).
  QStringList arguments() const;
  void start();
  void cancel();
  bool running() const { return process_.state() != QProcess::NotRunning; }
  QProcess& process() { return process_; }

  // For tests and screenshots.
  QLineEdit* storePath() const { return store_; }
  QLineEdit* listOption() const { return list_; }       // worker counts / LoRA ranks
  QSpinBox* lengthOption() const { return length_; }    // epochs / fine-tuning steps
  QSpinBox* sampleOption() const { return samples_; }   // training images / pretraining steps
  QCheckBox* quickOption() const { return quick_; }
  QTableWidget* results() const { return table_; }
  QTableWidget* runs() const { return runs_; }
  QProgressBar* progress() const { return bar_; }
  QLabel* status() const { return status_; }
  int chartSeries(int chart) const;  // series shown in chart `chart`
  void reloadRuns();

 Q_SIGNALS:
  void finished(int exit_code);

 private:
  void onLine(const QByteArray& line);
  void refreshCharts();
  std::vector<teach::Chart> charts() const;
  double totalSteps() const;

  Kind kind_;
  QLineEdit *store_, *list_;
  QSpinBox *length_, *samples_;
  QCheckBox* quick_;
  QPushButton *run_, *cancel_;
  QProgressBar* bar_;
  QLabel* status_;
  std::vector<QChartView*> views_;
  QTableWidget *table_, *runs_;
  QProcess process_;
  QByteArray pending_;
  QTimer redraw_;
  QElapsedTimer clock_;
  bool dirty_ = false;
  double done_steps_ = 0;
  std::vector<teach::LenetRun> lenet_;
  teach::LoraRanksRun lora_;
};

}  // namespace paraplan::gui

#pragma once
// The paraplan window: inputs and plan panels on the left; Plan (memory + time), Search, Runs and Learn
// tabs; open/save plan files (the CLI's JSON) and export charts as PNG/SVG.
#include <QMainWindow>

#include "plan_session.hpp"

class QTabWidget;
class QLabel;
class QChartView;

namespace paraplan::gui {

class InputsPanel;
class ParallelPanel;
class MemoryView;
class TimeView;
class SearchTab;
class RunsTab;
class LearnTab;
class TimelineTab;

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  explicit MainWindow(QWidget* parent = nullptr);

  PlanSession* session() const { return session_; }
  InputsPanel* inputs() const { return inputs_; }
  ParallelPanel* parallel() const { return parallel_; }
  MemoryView* memoryView() const { return memory_; }
  TimeView* timeView() const { return time_; }
  SearchTab* searchTab() const { return search_; }
  RunsTab* runsTab() const { return runs_; }
  LearnTab* learnTab() const { return learn_; }
  TimelineTab* timelineTab() const { return timeline_; }
  QTabWidget* tabs() const { return tabs_; }
  QLabel* messages() const { return messages_; }

  bool openPlan(const QString& path);
  bool savePlan(const QString& path);
  // The chart of the current tab, saved as PNG or SVG by the file's extension.
  bool exportChart(const QString& path);

 private:
  void showEvaluation(const Evaluation& e);
  QChartView* currentChart() const;
  PlanSession* session_;
  InputsPanel* inputs_;
  ParallelPanel* parallel_;
  MemoryView* memory_;
  TimeView* time_;
  SearchTab* search_;
  RunsTab* runs_;
  LearnTab* learn_;
  TimelineTab* timeline_;
  QTabWidget* tabs_;
  QLabel* messages_;
  QLabel* latency_;
};

}  // namespace paraplan::gui

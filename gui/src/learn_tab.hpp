#pragma once
// The guided tour of the textbook chapter's memory trade-offs: each step changes one knob of the plan
// and shows what moved, category by category, with the planner's numbers and why.
#include <QWidget>
#include <vector>

#include "plan_session.hpp"

class QListWidget;
class QLabel;
class QTableWidget;

namespace paraplan::gui {

class MemoryView;

struct TourStep {
  QString title;
  QString why;          // rich text
  std::string plan;     // the plan JSON of this step
  int compare_with;     // the step (0-based) whose one knob this step turns; -1 for the first
};
const std::vector<TourStep>& tourSteps();

class LearnTab : public QWidget {
  Q_OBJECT
 public:
  LearnTab(PlanSession* session, QWidget* parent = nullptr);
  void goTo(int step);
  int current() const { return current_; }
  QTableWidget* deltas() const { return deltas_; }
  MemoryView* memoryView() const { return memory_; }

 private:
  PlanSession* session_;
  QListWidget* list_;
  QLabel *title_, *why_, *summary_;
  QTableWidget* deltas_;
  MemoryView* memory_;
  int current_ = -1;
};

}  // namespace paraplan::gui

#pragma once
// The Learn tab teaches from the textbook chapter. Three pages:
// - the guided tour of its memory trade-offs: each step changes one knob of the plan and shows what
//   moved, category by category, with the planner's numbers, the formula and its value (the steps come
//   from the teaching library, teach/tour.hpp, the same ones `paraplan demo memory-tour` prints);
// - exercise 1 (DDP LeNet-5) and exercise 2 (LoRA ranks), run as `paraplan demo` child processes with
//   progress, live curves, the result tables and their runs in the store (exercise_panel.hpp).
#include <QWidget>
#include <vector>

#include "paraplan/teach/tour.hpp"
#include "plan_session.hpp"

class QListWidget;
class QLabel;
class QTabWidget;
class QTableWidget;

namespace paraplan::gui {

class ExercisePanel;
class MemoryView;

class LearnTab : public QWidget {
  Q_OBJECT
 public:
  LearnTab(PlanSession* session, QWidget* parent = nullptr);
  void goTo(int step);
  int current() const { return current_; }
  QTableWidget* deltas() const { return deltas_; }
  MemoryView* memoryView() const { return memory_; }
  QLabel* formula() const { return formula_; }
  QTabWidget* pages() const { return pages_; }
  ExercisePanel* lenetPanel() const { return lenet_; }
  ExercisePanel* loraPanel() const { return lora_; }

 private:
  PlanSession* session_;
  std::vector<teach::TourStep> steps_;
  QTabWidget* pages_;
  QListWidget* list_;
  QLabel *title_, *why_, *formula_, *summary_;
  QTableWidget* deltas_;
  MemoryView* memory_;
  ExercisePanel *lenet_, *lora_;
  int current_ = -1;
};

}  // namespace paraplan::gui

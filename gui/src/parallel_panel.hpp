#pragma once
// The parallel layout: only values valid for the current model and cluster are offered.
#include <QWidget>

#include "field_errors.hpp"
#include "plan_session.hpp"

class QComboBox;
class QCheckBox;
class QLabel;

namespace paraplan::gui {

class ParallelPanel : public QWidget {
  Q_OBJECT
 public:
  ParallelPanel(PlanSession* session, QWidget* parent = nullptr);
  std::vector<planner::Violation> showViolations(const std::vector<planner::Violation>& v) { return errors_.show(v); }
  QComboBox* tpCombo() const { return tp_; }
  QComboBox* ppCombo() const { return pp_; }
  QComboBox* zeroCombo() const { return zero_; }
  QComboBox* scheduleCombo() const { return schedule_; }
  QComboBox* cpCombo() const { return cp_; }
  QComboBox* virtualStagesCombo() const { return v_; }
  QCheckBox* epOverlapCheck() const { return ep_overlap_; }
  QCheckBox* ppOverlapCheck() const { return pp_overlap_; }

 public Q_SLOTS:
  void refresh();

 private:
  PlanSession* session_;
  FieldErrors errors_;
  QComboBox *tp_, *pp_, *cp_, *ep_, *zero_, *schedule_, *v_;
  QCheckBox *sp_, *tp_overlap_, *ep_overlap_, *dp_overlap_, *pp_overlap_;
  QLabel* dp_;
};

}  // namespace paraplan::gui

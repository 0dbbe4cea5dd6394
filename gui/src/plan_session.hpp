#pragma once
// The plan being explored, and what the planner says about it. Every panel edits the plan through
// `update`; every view redraws on `evaluated`.
#include <QObject>
#include <functional>
#include <optional>
#include <vector>

#include "paraplan/error.hpp"
#include "paraplan/memory.hpp"
#include "paraplan/parallel_rules.hpp"
#include "paraplan/plan.hpp"
#include "paraplan/timing.hpp"
#include "paraplan/validation.hpp"

namespace paraplan::gui {

struct Evaluation {
  bool valid = false;
  std::vector<planner::Violation> violations;  // when not valid: every broken rule
  planner::MemoryBreakdown memory;
  planner::StepEstimate time;
  double estimate_ms = 0;  // how long the planner took
  std::string calibration;  // name of the calibration the time model used
  std::string calibration_device;  // the GPU it was fitted on, when not this plan's ("" otherwise)
  std::vector<std::string> own_calibrations;  // then: the built-in profiles fitted on this plan's GPU
  std::optional<planner::TrackRecord> moe_record;  // a model with experts: the record on published MoE runs
};

// Validates the plan and, when valid, runs the memory and time models on it.
Evaluation evaluatePlan(const planner::Plan& plan);

class PlanSession : public QObject {
  Q_OBJECT
 public:
  explicit PlanSession(QObject* parent = nullptr);

  const planner::Plan& plan() const { return plan_; }
  const Evaluation& evaluation() const { return eval_; }

  // Replaces the whole plan (open file, search result, guided tour step).
  void setPlan(const planner::Plan& plan);
  // Changes the plan in place and re-evaluates; `derive` keeps dp = gpus / (tp pp cp) when it divides.
  void update(const std::function<void(planner::Plan&)>& change, bool derive_dp = true);

  // Values each degree may take for the current model and cluster (the rest of the plan as it is).
  static std::vector<int> tpOptions(const planner::Plan& p);
  static std::vector<int> ppOptions(const planner::Plan& p);
  static std::vector<int> cpOptions(const planner::Plan& p);
  static std::vector<int> epOptions(const planner::Plan& p);
  static std::vector<planner::ScheduleChoice> scheduleOptions(const planner::Plan& p);
  static std::vector<int> virtualStageOptions(const planner::Plan& p);  // of the current schedule

 Q_SIGNALS:
  void planChanged();             // the plan itself changed (panels refresh their controls)
  void evaluated(const Evaluation& e);

 private:
  void evaluate();
  planner::Plan plan_;
  Evaluation eval_;
};

// The default plan the app opens with: LLaMA-3-8B, 8 H100s, ZeRO-1, sequence 8192.
planner::Plan defaultPlan();

}  // namespace paraplan::gui

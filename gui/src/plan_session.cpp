#include "plan_session.hpp"

#include <QElapsedTimer>
#include <nlohmann/json.hpp>

#include "paraplan/calibration.hpp"
#include "paraplan/parallel_rules.hpp"
#include "paraplan/plan_io.hpp"

namespace paraplan::gui {

using namespace planner;

Plan defaultPlan() {
  return plan_from_json(nlohmann::json::parse(R"({"model": "llama3-8b",
    "training": {"seq_len": 8192, "global_batch": 1024, "recompute": "selective"},
    "parallel": {"dp": 8, "zero": 1}, "cluster": {"gpu": "h100-sxm-80gb", "gpus": 8}})"));
}

PlanSession::PlanSession(QObject* parent) : QObject(parent), plan_(defaultPlan()) { evaluate(); }

void PlanSession::setPlan(const Plan& plan) {
  plan_ = plan;
  Q_EMIT planChanged();
  evaluate();
}

void PlanSession::update(const std::function<void(Plan&)>& change, bool derive_dp) {
  change(plan_);
  auto& par = plan_.parallel;
  const long long mp = static_cast<long long>(par.tp) * par.pp * par.cp;
  if (derive_dp && mp > 0 && plan_.cluster.gpus % mp == 0) par.dp = static_cast<int>(plan_.cluster.gpus / mp);
  Q_EMIT planChanged();
  evaluate();
}

Evaluation evaluatePlan(const Plan& plan) {
  QElapsedTimer timer;
  timer.start();
  Evaluation e;
  Violations v;
  try {
    validate_plan(plan, v);
  } catch (const PlanError& err) {
    for (const auto& x : err.violations()) v.add(x.field, x.value, x.rule);
  }
  e.violations = v.list();
  e.valid = v.empty();
  if (e.valid) {
    e.memory = estimate_memory(plan);
    e.time = estimate_time(plan);
    if (plan.model.moe) e.moe_record = moe_track_record();  // computed once, on the first MoE plan
  }
  e.estimate_ms = static_cast<double>(timer.nsecsElapsed()) / 1e6;
  e.calibration = plan.cluster.calibration.name;
  if (fitted_on_another_gpu(plan.cluster.gpu, plan.cluster.calibration)) {
    e.calibration_device = plan.cluster.calibration.device;
    e.own_calibrations = builtin_calibrations_of(plan.cluster.gpu.id);
  }
  return e;
}

void PlanSession::evaluate() {
  eval_ = evaluatePlan(plan_);
  Q_EMIT evaluated(eval_);
}

// The option lists come from the planner's legality generators (parallel_rules.hpp): what the GUI
// offers is what `paraplan plan` accepts.
std::vector<int> PlanSession::tpOptions(const Plan& p) { return tp_degrees(p.model, p.cluster.gpus); }

std::vector<int> PlanSession::ppOptions(const Plan& p) {
  return pp_degrees(p.model, p.cluster.gpus / std::max(1, p.parallel.tp * p.parallel.cp));
}

std::vector<int> PlanSession::cpOptions(const Plan& p) {
  return cp_degrees(p.model, p.training, p.cluster.gpus / std::max(1, p.parallel.tp * p.parallel.pp));
}

std::vector<int> PlanSession::epOptions(const Plan& p) {
  return ep_degrees(p.model, static_cast<long long>(p.parallel.dp) * p.parallel.cp);
}

std::vector<ScheduleChoice> PlanSession::scheduleOptions(const Plan& p) {
  const long long per_step = static_cast<long long>(p.parallel.dp) * p.training.micro_batch;
  const long long m = per_step > 0 && p.training.global_batch % per_step == 0 ? p.training.global_batch / per_step : 0;
  return schedule_choices(p.parallel.pp, p.model.layers, m);
}

std::vector<int> PlanSession::virtualStageOptions(const Plan& p) {
  std::vector<int> out;
  for (const ScheduleChoice& c : scheduleOptions(p))
    if (c.schedule == p.parallel.pp_schedule) out.push_back(c.virtual_stages);
  if (out.empty()) out.push_back(p.parallel.virtual_stages);  // the current value stays, so its message shows
  return out;
}

}  // namespace paraplan::gui

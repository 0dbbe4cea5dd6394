#include "plan_session.hpp"

#include <QElapsedTimer>
#include <nlohmann/json.hpp>

#include "paraplan/plan_io.hpp"

namespace paraplan::gui {

using namespace planner;

namespace {
std::vector<int> divisors(long long n) {
  std::vector<int> d;
  for (long long i = 1; i <= n; ++i)
    if (n % i == 0) d.push_back(static_cast<int>(i));
  return d;
}
}  // namespace

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
  }
  e.estimate_ms = static_cast<double>(timer.nsecsElapsed()) / 1e6;
  e.calibration = plan.cluster.calibration.name;
  return e;
}

void PlanSession::evaluate() {
  eval_ = evaluatePlan(plan_);
  Q_EMIT evaluated(eval_);
}

std::vector<int> PlanSession::tpOptions(const Plan& p) {
  std::vector<int> out;
  const ModelSpec& m = p.model;
  for (int tp : divisors(p.cluster.gpus))
    if (m.heads % tp == 0 && (m.mla || m.kv_heads % tp == 0) && m.ffn_hidden % tp == 0 &&
        (!m.moe || m.moe->ffn_hidden % tp == 0))
      out.push_back(tp);
  return out;
}

std::vector<int> PlanSession::ppOptions(const Plan& p) {
  std::vector<int> out;
  const long long rest = p.cluster.gpus / std::max(1, p.parallel.tp * p.parallel.cp);
  for (int pp : divisors(rest))
    if (pp <= p.model.layers) out.push_back(pp);
  return out;
}

std::vector<int> PlanSession::cpOptions(const Plan& p) {
  std::vector<int> out;
  for (int cp : divisors(p.cluster.gpus / std::max(1, p.parallel.tp * p.parallel.pp)))
    if (cp == 1 || (p.training.flash_attention && p.training.seq_len % (2 * cp) == 0)) out.push_back(cp);
  return out;
}

std::vector<int> PlanSession::epOptions(const Plan& p) {
  if (!p.model.moe) return {1};
  std::vector<int> out;
  const long long dpcp = static_cast<long long>(p.parallel.dp) * p.parallel.cp;
  for (int ep : divisors(p.model.moe->experts))
    if (dpcp % ep == 0) out.push_back(ep);
  return out;
}

std::vector<int> PlanSession::virtualStageOptions(const Plan& p) {
  switch (p.parallel.pp_schedule) {
    case PipelineSchedule::interleaved: {
      std::vector<int> out;
      for (int v = 2; v <= 8 && p.parallel.pp * v <= p.model.layers; ++v) out.push_back(v);
      return out;
    }
    case PipelineSchedule::zbv: return {2};
    default: return {1};
  }
}

}  // namespace paraplan::gui

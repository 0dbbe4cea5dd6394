#include "parallel_panel.hpp"

#include <QCheckBox>
#include <QComboBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QLabel>
#include <QSignalBlocker>
#include <QVBoxLayout>
#include <algorithm>

#include "paraplan/framework.hpp"

namespace paraplan::gui {

using namespace planner;

namespace {

void fill(QComboBox* c, const std::vector<int>& values, int current, const QString& suffix = {}) {
  const QSignalBlocker b(c);
  c->clear();
  bool found = false;
  for (int v : values) {
    c->addItem(QString::number(v) + suffix, v);
    found = found || v == current;
  }
  if (!found) c->addItem(QString::number(current) + suffix + "  (invalid)", current);  // keep what the plan says
  c->setCurrentIndex(c->findData(current));
}

}  // namespace

ParallelPanel::ParallelPanel(PlanSession* session, QWidget* parent) : QWidget(parent), session_(session) {
  auto* root = new QVBoxLayout(this);
  root->setContentsMargins(0, 0, 0, 0);
  auto* box = new QGroupBox("Parallel plan");
  auto* form = new QFormLayout(box);
  dp_ = new QLabel;
  dp_->setToolTip("Data-parallel degree: what the cluster leaves after tp, pp and cp (GPUs / (tp x pp x cp))");
  tp_ = new QComboBox;
  tp_->setToolTip("Tensor parallel: splits every layer's matrices by heads / columns (Megatron)");
  pp_ = new QComboBox;
  pp_->setToolTip("Pipeline stages: splits the layers; stage 0 also holds the embedding, the last the head");
  cp_ = new QComboBox;
  cp_->setToolTip("Context parallel: splits the sequence (ring attention)");
  ep_ = new QComboBox;
  ep_->setToolTip("Expert parallel (MoE): spreads the experts over ranks taken from dp x cp");
  zero_ = new QComboBox;
  zero_->addItem("0 — plain DP (every rank holds everything)", 0);
  zero_->addItem("1 — shard optimizer states", 1);
  zero_->addItem("2 — + shard gradients", 2);
  zero_->addItem("3 — + shard parameters (FSDP)", 3);
  sp_ = new QCheckBox("sequence parallel (shards TP-replicated activations)");
  schedule_ = new QComboBox;
  v_ = new QComboBox;
  tp_overlap_ = new QCheckBox("overlap TP communication with GEMMs");
  ep_overlap_ = new QCheckBox("overlap MoE all-to-all with the next micro-batch");
  dp_overlap_ = new QCheckBox("overlap DP gradient reduction with backward");
  pp_overlap_ = new QCheckBox("overlap interleaved pipeline transfers (Megatron-LM)");
  pp_overlap_->setToolTip("Megatron-Core's --overlap-p2p-communication: transfers under compute except in the "
                          "warm-up and cool-down; off: every transfer blocks");
  form->addRow("dp", errors_.wrap(dp_, {"cluster.gpus"}));
  form->addRow("tp", errors_.wrap(tp_, {"parallel.tp"}));
  form->addRow("pp", errors_.wrap(pp_, {"parallel.pp", "parallel.layer_split"}));
  form->addRow("cp", errors_.wrap(cp_, {"parallel.cp"}));
  form->addRow("ep", errors_.wrap(ep_, {"parallel.ep"}));
  form->addRow("ZeRO", errors_.wrap(zero_, {"parallel.zero"}));
  form->addRow("", errors_.wrap(sp_, {"parallel.sequence_parallel"}));
  form->addRow("schedule", errors_.wrap(schedule_, {"parallel.pp_schedule"}));
  form->addRow("virtual stages", errors_.wrap(v_, {"parallel.virtual_stages"}));
  form->addRow("", tp_overlap_);
  form->addRow("", ep_overlap_);
  form->addRow("", dp_overlap_);
  form->addRow("", pp_overlap_);
  root->addWidget(box);

  auto on_int = [this](QComboBox* c, auto apply) {
    connect(c, &QComboBox::activated, this, [this, c, apply] {
      const int v = c->currentData().toInt();
      session_->update([&](Plan& p) { apply(p, v); });
    });
  };
  on_int(tp_, [](Plan& p, int v) {
    p.parallel.tp = v;
    if (v == 1) p.parallel.sequence_parallel = false;
  });
  on_int(pp_, [](Plan& p, int v) {
    p.parallel.pp = v;
    p.parallel.layer_split.clear();
    if (v == 1) {
      p.parallel.pp_schedule = PipelineSchedule::one_f_one_b;
      p.parallel.virtual_stages = 1;
    }
  });
  on_int(cp_, [](Plan& p, int v) { p.parallel.cp = v; });
  on_int(ep_, [](Plan& p, int v) { p.parallel.ep = v; });
  on_int(zero_, [](Plan& p, int v) { p.parallel.zero = v; });
  on_int(v_, [](Plan& p, int v) { p.parallel.virtual_stages = v; });
  on_int(schedule_, [](Plan& p, int v) {
    p.parallel.pp_schedule = static_cast<PipelineSchedule>(v);
    const auto opts = PlanSession::virtualStageOptions(p);
    p.parallel.virtual_stages = opts.empty() ? 1 : opts.front();
  });
  connect(sp_, &QCheckBox::toggled, this, [this](bool on) { session_->update([&](Plan& p) { p.parallel.sequence_parallel = on; }); });
  connect(tp_overlap_, &QCheckBox::toggled, this, [this](bool on) { session_->update([&](Plan& p) { p.parallel.tp_comm_overlap = on; }); });
  connect(ep_overlap_, &QCheckBox::toggled, this, [this](bool on) { session_->update([&](Plan& p) { p.parallel.ep_comm_overlap = on; }); });
  connect(dp_overlap_, &QCheckBox::toggled, this, [this](bool on) { session_->update([&](Plan& p) { p.parallel.dp_overlap = on; }); });
  connect(pp_overlap_, &QCheckBox::toggled, this, [this](bool on) { session_->update([&](Plan& p) { p.parallel.pp_comm_overlap = on; }); });
  connect(session_, &PlanSession::planChanged, this, &ParallelPanel::refresh);
  refresh();
}

void ParallelPanel::refresh() {
  const Plan& p = session_->plan();
  const auto& par = p.parallel;
  dp_->setText(QString("%1  (= %2 %6 / (tp %3 x pp %4 x cp %5))")
                   .arg(par.dp)
                   .arg(p.cluster.gpus)
                   .arg(par.tp)
                   .arg(par.pp)
                   .arg(par.cp)
                   .arg(p.cluster.gpus == 1 ? "GPU" : "GPUs"));
  fill(tp_, PlanSession::tpOptions(p), par.tp);
  fill(pp_, PlanSession::ppOptions(p), par.pp);
  fill(cp_, PlanSession::cpOptions(p), par.cp);
  fill(ep_, PlanSession::epOptions(p), par.ep);
  ep_->setEnabled(p.model.moe.has_value());
  {
    const QSignalBlocker b(zero_);
    zero_->setCurrentIndex(zero_->findData(par.zero));
  }
  {
    const QSignalBlocker b(sp_);
    sp_->setChecked(par.sequence_parallel);
    sp_->setEnabled(par.tp > 1 || par.sequence_parallel);
  }
  {
    const QSignalBlocker b(schedule_);
    schedule_->clear();
    // The schedules the planner's rules allow for this pp, layer count and micro-batch count
    // (parallel_rules.hpp); the current schedule stays listed even when invalid, so its message shows.
    const auto choices = PlanSession::scheduleOptions(p);
    auto offer = [&](PipelineSchedule s, const char* label) {
      const bool valid = std::any_of(choices.begin(), choices.end(), [&](const ScheduleChoice& c) { return c.schedule == s; });
      if (valid || par.pp_schedule == s) schedule_->addItem(label, static_cast<int>(s));
    };
    offer(PipelineSchedule::one_f_one_b, "1F1B");
    offer(PipelineSchedule::gpipe, "GPipe (all forward, all backward)");
    offer(PipelineSchedule::interleaved, "interleaved 1F1B");
    offer(PipelineSchedule::zb_h1, "zero bubble ZB-H1");
    offer(PipelineSchedule::zbv, "zero bubble V (ZBV)");
    schedule_->setCurrentIndex(std::max(0, schedule_->findData(static_cast<int>(par.pp_schedule))));
  }
  fill(v_, PlanSession::virtualStageOptions(p), par.virtual_stages);
  {
    const QSignalBlocker b(tp_overlap_);
    tp_overlap_->setChecked(par.tp_comm_overlap);
  }
  {
    const QSignalBlocker b(ep_overlap_);
    ep_overlap_->setChecked(par.ep_comm_overlap);
    ep_overlap_->setEnabled(par.ep > 1);  // nothing to overlap without expert parallelism
  }
  {
    const QSignalBlocker b(dp_overlap_);
    dp_overlap_->setChecked(par.dp_overlap);
  }
  {
    const QSignalBlocker b(pp_overlap_);
    pp_overlap_->setChecked(par.pp_comm_overlap);
    // Only Megatron-Core's interleaved schedule has transfers to overlap (FrameworkProfile interleaved_p2p_overlap).
    pp_overlap_->setEnabled(par.pp_schedule == PipelineSchedule::interleaved &&
                            framework_profile(p.framework()).interleaved_p2p_overlap);
  }
}

}  // namespace paraplan::gui

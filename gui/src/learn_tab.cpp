#include "learn_tab.hpp"

#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QListWidget>
#include <QTableWidget>
#include <QVBoxLayout>
#include <nlohmann/json.hpp>

#include "gui_format.hpp"
#include "memory_view.hpp"
#include "paraplan/plan_io.hpp"

namespace paraplan::gui {

using namespace planner;

const std::vector<TourStep>& tourSteps() {
  // LLaMA-3-8B as in the chapter's Hugging Face recipe (bf16, AdamW, batch 1, gradient checkpointing),
  // then the parallel methods of section 10.3, one knob at a time.
  static const std::vector<TourStep> steps = {
      {"1. Full fine-tuning on one GPU",
       "Every parameter trains: mixed-precision AdamW keeps <b>18 bytes per parameter</b> — bf16 weights (2), fp32 "
       "gradients (4), an fp32 master copy (4) and two fp32 Adam moments (8). For LLaMA-3-8B that is 144.5 GB before "
       "a single activation: it does not fit an 80 GB GPU. (The chapter's 7B in fp16 = 14 GB counts the weights only.)",
       R"({"model": "llama3-8b", "training": {"seq_len": 2048, "global_batch": 8, "recompute": "full"},
           "parallel": {"dp": 1}, "cluster": {"gpu": "h100-sxm-80gb", "gpus": 1}})",
       -1},
      {"2. LoRA: freeze the base, train adapters (the chapter's recipe)",
       "LoRA r = 8 on q_proj and v_proj adds r(d + k) parameters per matrix: 3,407,872 for LLaMA-3-8B, "
       "<b>0.042%</b> of the model (peft prints the same). The frozen bf16 base keeps only its weights — no gradients, "
       "no master copy, no optimizer state — so gradients, master and optimizer all but vanish.",
       R"({"model": "llama3-8b", "training": {"seq_len": 2048, "global_batch": 8, "recompute": "full",
           "lora": {"rank": 8, "alpha": 32, "targets": ["q_proj", "v_proj"]}},
           "parallel": {"dp": 1}, "cluster": {"gpu": "h100-sxm-80gb", "gpus": 1}})",
       0},
      {"3. QLoRA: a 4-bit base",
       "QLoRA stores the frozen linear weights in NF4: 4 bits plus double-quantised scales, <b>0.516 bytes per "
       "parameter</b> instead of 2. Embeddings, head and norms stay bf16. The weights bar shrinks by ~3.6x; the "
       "adapters and activations are unchanged.",
       R"({"model": "llama3-8b", "training": {"seq_len": 2048, "global_batch": 8, "recompute": "full",
           "lora": {"rank": 8, "alpha": 32, "targets": ["q_proj", "v_proj"], "base": "nf4"}},
           "parallel": {"dp": 1}, "cluster": {"gpu": "h100-sxm-80gb", "gpus": 1}})",
       1},
      {"4. Full training again, data parallel on 8 GPUs (DDP)",
       "Data parallelism gives every GPU a whole replica and a slice of the batch: training is 8x faster, but "
       "<b>memory per GPU does not drop</b> — each still holds 144.5 GB of model states (section 10.3.1).",
       R"({"model": "llama3-8b", "training": {"seq_len": 2048, "global_batch": 64, "recompute": "full"},
           "parallel": {"dp": 8, "zero": 0}, "cluster": {"gpu": "h100-sxm-80gb", "gpus": 8}})",
       0},
      {"5. ZeRO-1: shard the optimizer states",
       "ZeRO-1 keeps 1/8 of the master weights and Adam moments on each GPU (the 12 bytes become 12/8): "
       "6 + 12/8 = 7.5 bytes per parameter, 60 GB. It fits.",
       R"({"model": "llama3-8b", "training": {"seq_len": 2048, "global_batch": 64, "recompute": "full"},
           "parallel": {"dp": 8, "zero": 1}, "cluster": {"gpu": "h100-sxm-80gb", "gpus": 8}})",
       3},
      {"6. ZeRO-2: shard the gradients too",
       "Gradients are reduce-scattered straight into their owner's shard: 2 + 16/8 = 4 bytes per parameter.",
       R"({"model": "llama3-8b", "training": {"seq_len": 2048, "global_batch": 64, "recompute": "full"},
           "parallel": {"dp": 8, "zero": 2}, "cluster": {"gpu": "h100-sxm-80gb", "gpus": 8}})",
       4},
      {"7. ZeRO-3 / FSDP: shard the parameters too",
       "FSDP (section 10.3.2) keeps 1/8 of everything and all-gathers each layer's parameters just before use, then "
       "frees them: 18/8 = 2.25 bytes per parameter. The price: gather buffers (the buffers bar) and three times the "
       "data-parallel traffic.",
       R"({"model": "llama3-8b", "training": {"seq_len": 2048, "global_batch": 64, "recompute": "full"},
           "parallel": {"dp": 8, "zero": 3}, "cluster": {"gpu": "h100-sxm-80gb", "gpus": 8}})",
       5},
      {"8. Tensor parallelism: split every layer's matrices",
       "TP = 8 splits Q/K/V and the MLP by heads and columns (section 10.3.2): weights, gradients and optimizer "
       "states of each layer divide by 8 without any gathering, and so do most activations — but every layer now "
       "all-reduces its output (the exposed communication in the step bar).",
       R"({"model": "llama3-8b", "training": {"seq_len": 2048, "global_batch": 64, "recompute": "full"},
           "parallel": {"dp": 1, "tp": 8}, "cluster": {"gpu": "h100-sxm-80gb", "gpus": 8}})",
       3},
      {"9. Pipeline parallelism: split the layers",
       "PP = 4 gives each stage 8 layers. Stages are not equal: stage 0 holds the embedding and the most "
       "micro-batches in flight (1F1B keeps p - s of them), the last stage the head and the fp32 logits. Idle "
       "time appears as the pipeline bubble, (p - 1)/m of the ideal.",
       R"({"model": "llama3-8b", "training": {"seq_len": 2048, "global_batch": 64, "recompute": "full"},
           "parallel": {"dp": 1, "tp": 2, "pp": 4}, "cluster": {"gpu": "h100-sxm-80gb", "gpus": 8}})",
       7},
      {"10. Recompute: trade compute for activation memory",
       "Without recompute every layer keeps its activations for the backward (Korthikanti et al. 2022: 34 sbh per "
       "layer plus the attention scores). Selective recompute re-runs only the attention core; full recompute "
       "(the chapter's gradient checkpointing) keeps just each layer's input and re-runs its forward: about a third "
       "more compute for a fraction of the memory. Compare with step 9.",
       R"({"model": "llama3-8b", "training": {"seq_len": 2048, "global_batch": 64, "recompute": "none"},
           "parallel": {"dp": 1, "tp": 2, "pp": 4}, "cluster": {"gpu": "h100-sxm-80gb", "gpus": 8}})",
       8},
  };
  return steps;
}

LearnTab::LearnTab(PlanSession* session, QWidget* parent) : QWidget(parent), session_(session) {
  list_ = new QListWidget;
  for (const TourStep& s : tourSteps()) list_->addItem(s.title);
  list_->setMinimumWidth(360);
  list_->setMaximumWidth(400);
  list_->setWordWrap(true);
  list_->setSpacing(3);
  title_ = new QLabel;
  QFont f = title_->font();
  f.setPointSizeF(f.pointSizeF() * 1.3);
  f.setBold(true);
  title_->setFont(f);
  why_ = new QLabel;
  why_->setWordWrap(true);
  why_->setTextFormat(Qt::RichText);
  summary_ = new QLabel;
  summary_->setWordWrap(true);
  deltas_ = new QTableWidget(0, 4);
  deltas_->setHorizontalHeaderLabels({"what (worst stage)", "before", "now", "change"});
  deltas_->verticalHeader()->hide();
  deltas_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  deltas_->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  deltas_->setMinimumHeight(280);
  deltas_->setMaximumHeight(300);
  deltas_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::ResizeToContents);
  memory_ = new MemoryView;
  memory_->setCompact();
  auto* right = new QWidget;
  auto* rv = new QVBoxLayout(right);
  rv->addWidget(title_);
  rv->addWidget(why_);
  rv->addWidget(summary_);
  rv->addWidget(deltas_);
  rv->addWidget(memory_, 1);
  auto* lay = new QHBoxLayout(this);
  lay->addWidget(list_);
  lay->addWidget(right, 1);
  connect(list_, &QListWidget::currentRowChanged, this, &LearnTab::goTo);
}

void LearnTab::goTo(int step) {
  if (step < 0 || step >= static_cast<int>(tourSteps().size())) return;
  if (list_->currentRow() != step) list_->setCurrentRow(step);  // re-enters goTo once
  if (step == current_) return;
  current_ = step;
  const TourStep& tour = tourSteps()[step];
  session_->setPlan(plan_from_json(nlohmann::json::parse(tour.plan)));
  const Evaluation& now = session_->evaluation();
  // "Before" is the step this one changes a knob of, whichever step was on screen before.
  const bool has_ref = tour.compare_with >= 0;
  const Evaluation previous =
      has_ref ? evaluatePlan(plan_from_json(nlohmann::json::parse(tourSteps()[tour.compare_with].plan))) : Evaluation{};
  title_->setText(tour.title);
  why_->setText(tour.why);
  memory_->show(now);
  deltas_->setHorizontalHeaderLabels(
      {"what (worst stage)", has_ref ? QString("before (step %1)").arg(tour.compare_with + 1) : QString("before"), "now",
       "change"});
  deltas_->setRowCount(0);
  if (!now.valid) return;
  const StageMemory& a = now.memory.per_stage[now.memory.worst_stage];
  struct Row {
    const char* name;
    double now, before;
    bool bytes;
  };
  std::vector<Row> rows;
  auto before = [&](auto get) {
    if (!previous.valid) return std::numeric_limits<double>::quiet_NaN();
    return get(previous.memory.per_stage[previous.memory.worst_stage]);
  };
  rows.push_back({"weights", a.weights_bytes, before([](const StageMemory& s) { return s.weights_bytes; }), true});
  rows.push_back({"gradients", a.gradients_bytes, before([](const StageMemory& s) { return s.gradients_bytes; }), true});
  rows.push_back({"master weights", a.master_weights_bytes, before([](const StageMemory& s) { return s.master_weights_bytes; }), true});
  rows.push_back({"optimizer states", a.optimizer_bytes, before([](const StageMemory& s) { return s.optimizer_bytes; }), true});
  rows.push_back({"activations", a.activations_bytes, before([](const StageMemory& s) { return s.activations_bytes; }), true});
  rows.push_back({"buffers + overheads", a.buffers_bytes + a.overhead_bytes,
                  before([](const StageMemory& s) { return s.buffers_bytes + s.overhead_bytes; }), true});
  rows.push_back({"total (worst GPU)", a.total_bytes(), before([](const StageMemory& s) { return s.total_bytes(); }), true});
  const double step_before = previous.valid ? previous.time.step_s : std::numeric_limits<double>::quiet_NaN();
  rows.push_back({"step time", now.time.step_s, step_before, false});
  deltas_->setRowCount(static_cast<int>(rows.size()));
  for (int i = 0; i < static_cast<int>(rows.size()); ++i) {
    const Row& r = rows[i];
    auto fmt = [&](double v) { return std::isnan(v) ? QString("—") : (r.bytes ? gib(v) : seconds(v)); };
    QString change = "—";
    if (!std::isnan(r.before)) {
      const double d = r.now - r.before;
      change = std::fabs(d) < (r.bytes ? 1 << 20 : 1e-6) ? "same" : (d > 0 ? "+" : "−") + fmt(std::fabs(d));
    }
    const QStringList cells = {r.name, fmt(r.before), fmt(r.now), change};
    for (int c = 0; c < 4; ++c) deltas_->setItem(i, c, new QTableWidgetItem(cells[c]));
  }
  summary_->setText(QString("%1 — %2 on %3 GPU(s): peak %4 of %5; %6 tokens/s, MFU %7.")
                        .arg(now.memory.fits ? "<b style='color:#1b5e20'>fits</b>" : "<b style='color:#b00020'>does not fit</b>")
                        .arg(QString::fromStdString(session_->plan().model.name))
                        .arg(session_->plan().cluster.gpus)
                        .arg(gib(now.memory.peak_bytes), gib(now.memory.gpu_memory_bytes), count(now.time.tokens_per_s),
                             percent(now.time.mfu)));
}

}  // namespace paraplan::gui

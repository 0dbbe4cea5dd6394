#include "learn_tab.hpp"

#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QListWidget>
#include <QTabWidget>
#include <QTableWidget>
#include <QVBoxLayout>
#include <cmath>

#include "exercise_panel.hpp"
#include "gui_format.hpp"
#include "memory_view.hpp"
#include "paraplan/plan_io.hpp"

namespace paraplan::gui {

using namespace planner;

LearnTab::LearnTab(PlanSession* session, QWidget* parent)
    : QWidget(parent), session_(session), steps_(teach::tour_steps()) {
  list_ = new QListWidget;
  for (const teach::TourStep& s : steps_) list_->addItem(QString::fromStdString(s.title));
  list_->setMinimumWidth(360);
  list_->setMaximumWidth(400);
  list_->setWordWrap(true);
  list_->setSpacing(3);
  title_ = new QLabel;
  QFont f = title_->font();
  f.setPointSizeF(f.pointSizeF() * 1.3);
  f.setBold(true);
  title_->setFont(f);
  title_->setWordWrap(true);  // a long step title wraps rather than widening the pane
  why_ = new QLabel;
  why_->setWordWrap(true);
  formula_ = new QLabel;
  formula_->setWordWrap(true);
  formula_->setTextFormat(Qt::RichText);
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
  // Its chart shrinks to 150 px before the table loses a row: at the Memory & time tab's 320 px the tour
  // had set the window's minimum height to 848 px, more than a laptop screen leaves it.
  memory_->setCompact();
  auto* right = new QWidget;
  auto* rv = new QVBoxLayout(right);
  rv->addWidget(title_);
  rv->addWidget(why_);
  rv->addWidget(formula_);
  rv->addWidget(summary_);
  rv->addWidget(deltas_);
  rv->addWidget(memory_, 1);
  auto* tour = new QWidget;
  auto* tl = new QHBoxLayout(tour);
  tl->addWidget(list_);
  tl->addWidget(right, 1);
  lenet_ = new ExercisePanel(ExercisePanel::Kind::ddp_lenet);
  lora_ = new ExercisePanel(ExercisePanel::Kind::lora_ranks);
  pages_ = new QTabWidget;
  pages_->addTab(tour, "Memory tour");
  pages_->addTab(lenet_, "Exercise 1: DDP LeNet-5");
  pages_->addTab(lora_, "Exercise 2: LoRA ranks");
  auto* lay = new QVBoxLayout(this);
  lay->setContentsMargins(0, 0, 0, 0);
  lay->addWidget(pages_);
  connect(list_, &QListWidget::currentRowChanged, this, &LearnTab::goTo);
}

void LearnTab::goTo(int step) {
  if (step < 0 || step >= static_cast<int>(steps_.size())) return;
  if (list_->currentRow() != step) list_->setCurrentRow(step);  // re-enters goTo once
  if (step == current_) return;
  current_ = step;
  const teach::TourStep& tour = steps_[static_cast<size_t>(step)];
  const teach::TourResult r = teach::evaluate_tour_step(steps_, step);
  session_->setPlan(plan_from_json(tour.plan));
  const Evaluation& now = session_->evaluation();
  title_->setText(QString::fromStdString(tour.title));
  why_->setText(QString::fromStdString("Changes " + tour.knob + " (chapter " + tour.section + "). " + r.explanation));
  formula_->setText(QString("<b>Formula:</b> %1<br><b>For this model:</b> %2")
                        .arg(QString::fromStdString(r.formula).toHtmlEscaped(),
                             QString::fromStdString(r.worked).toHtmlEscaped()));
  memory_->show(now);
  const bool has_ref = tour.compare_with >= 0;
  deltas_->setHorizontalHeaderLabels(
      {"what (worst stage)", has_ref ? QString("before (step %1)").arg(tour.compare_with + 1) : QString("before"), "now",
       "change"});
  deltas_->setRowCount(0);
  if (!r.valid) {
    summary_->setText(QString("Not possible for this model: %1").arg(QString::fromStdString(r.error)));
    return;
  }
  deltas_->setRowCount(static_cast<int>(r.rows.size()));
  for (int i = 0; i < static_cast<int>(r.rows.size()); ++i) {
    const teach::TourRow& row = r.rows[static_cast<size_t>(i)];
    auto fmt = [&](double v) { return row.bytes ? gib(v) : seconds(v); };
    QString change = "—";
    if (row.has_before) {
      const double d = row.now - row.before;
      change = std::fabs(d) < (row.bytes ? 1 << 20 : 1e-6) ? "same" : (d > 0 ? "+" : "−") + fmt(std::fabs(d));
    }
    const QStringList cells = {QString::fromStdString(row.what), row.has_before ? fmt(row.before) : "—", fmt(row.now),
                               change};
    for (int c = 0; c < 4; ++c) deltas_->setItem(i, c, new QTableWidgetItem(cells[c]));
  }
  const int gpus = session_->plan().cluster.gpus;
  summary_->setText(QString("%1 — %2 on %3 %8: peak %4 of %5; %6 tokens/s, MFU %7.")
                        .arg(now.memory.fits ? "<b style='color:#1b5e20'>fits</b>" : "<b style='color:#b00020'>does not fit</b>")
                        .arg(QString::fromStdString(session_->plan().model.name))
                        .arg(gpus)
                        .arg(gib(now.memory.peak_bytes), gib(now.memory.gpu_memory_bytes), count(now.time.tokens_per_s),
                             percent(now.time.mfu), gpus == 1 ? "GPU" : "GPUs"));
}

}  // namespace paraplan::gui

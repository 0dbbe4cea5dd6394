#include "memory_view.hpp"

#include <QBarCategoryAxis>
#include <QBarSet>
#include <QChart>
#include <QChartView>
#include <QCursor>
#include <QLabel>
#include <QLineSeries>
#include <QStackedBarSeries>
#include <QToolTip>
#include <QValueAxis>
#include <QVBoxLayout>

#include "gui_format.hpp"

namespace paraplan::gui {

using namespace planner;

namespace {
constexpr double kGiB = double(1ull << 30);
const QColor kColors[MemoryView::kCategories] = {QColor("#4e79a7"), QColor("#f28e2b"), QColor("#76b7b2"), QColor("#e15759"),
                                                 QColor("#59a14f"), QColor("#edc948"), QColor("#9c9c9c")};

double category_bytes(const StageMemory& s, int c) {
  switch (c) {
    case 0: return s.weights_bytes;
    case 1: return s.gradients_bytes;
    case 2: return s.master_weights_bytes;
    case 3: return s.optimizer_bytes;
    case 4: return s.activations_bytes;
    case 5: return s.buffers_bytes;
    default: return s.overhead_bytes;
  }
}
}  // namespace

const char* MemoryView::categoryName(int c) {
  static const char* names[kCategories] = {"weights", "gradients", "master weights", "optimizer states",
                                           "activations", "buffers", "overheads"};
  return names[c];
}

const char* MemoryView::categorySource(int c) {
  static const char* sources[kCategories] = {
      "2 B per bf16 parameter (fp32: 4; QLoRA NF4: 0.516), split by tp and ep, by dp at ZeRO-3 — ZeRO (Rajbhandari 2019) §5",
      "grad_dtype bytes per trainable parameter (Megatron fp32 main grads: 4), split by dp from ZeRO-2 — ZeRO Table 1",
      "fp32 copy, 4 B per trainable parameter under mixed precision, split by dp from ZeRO-1 — ZeRO Table 1",
      "Adam: two fp32 moments, 8 B per trainable parameter, split by dp from ZeRO-1 — ZeRO Table 1 (K = 12 with master)",
      "saved tensors per layer (Korthikanti et al. 2022 Table 2) x micro-batches in flight (1F1B: min(m, p - s)) + backward working set",
      "DP gradient buckets, ZeRO-3 gathered and prefetched layers, pipeline send/receive buffers",
      "CUDA context 512 MiB (pytorch #107667) + 688 MB per NCCL communicator (nccl #964) + 5% allocator headroom"};
  return sources[c];
}

MemoryView::MemoryView(QWidget* parent) : QWidget(parent) {
  chart_ = new QChart;
  chart_->setTitle("Memory per GPU by pipeline stage (stage 0 holds the embedding, the last stage the head)");
  chart_->legend()->setAlignment(Qt::AlignBottom);
  bars_ = new QStackedBarSeries;
  for (int c = 0; c < kCategories; ++c) {
    sets_[c] = new QBarSet(categoryName(c));
    sets_[c]->setColor(kColors[c]);
    sets_[c]->setBorderColor(kColors[c].darker(115));
    bars_->append(sets_[c]);
    connect(sets_[c], &QBarSet::hovered, this, [this, c](bool on, int index) { hovered(c, on, index); });
  }
  chart_->addSeries(bars_);
  capacity_ = new QLineSeries;
  capacity_->setName("GPU memory");
  QPen pen(QColor("#b00020"));
  pen.setWidth(2);
  pen.setStyle(Qt::DashLine);
  capacity_->setPen(pen);
  chart_->addSeries(capacity_);
  x_ = new QBarCategoryAxis;
  x_->setTitleText("pipeline stage");
  y_ = new QValueAxis;
  y_->setTitleText("GiB (2^30 bytes)");
  y_->setLabelFormat("%.0f");
  chart_->addAxis(x_, Qt::AlignBottom);
  chart_->addAxis(y_, Qt::AlignLeft);
  bars_->attachAxis(x_);
  bars_->attachAxis(y_);
  capacity_->attachAxis(x_);
  capacity_->attachAxis(y_);
  view_ = new QChartView(chart_);
  view_->setRenderHint(QPainter::Antialiasing);
  view_->setMinimumHeight(320);
  verdict_ = new QLabel;
  verdict_->setWordWrap(true);
  auto* lay = new QVBoxLayout(this);
  lay->setContentsMargins(0, 0, 0, 0);
  lay->addWidget(verdict_);
  lay->addWidget(view_, 1);
}

void MemoryView::show(const Evaluation& e) {
  if (!e.valid) {
    verdict_->setText("<b>No estimate:</b> the plan breaks a rule (see the red messages beside the controls).");
    verdict_->setStyleSheet("color: #b00020;");
    for (auto* s : sets_) s->remove(0, s->count());
    capacity_->clear();
    return;
  }
  last_ = e.memory;
  const auto& stages = e.memory.per_stage;
  const int n = static_cast<int>(stages.size());
  QStringList names;
  for (int s = 0; s < n; ++s) {
    names << QString::number(s);
  }
  if (x_->categories() != names) x_->setCategories(names);
  for (int c = 0; c < kCategories; ++c) {
    QList<qreal> values;
    values.reserve(n);
    for (const StageMemory& st : stages) values << category_bytes(st, c) / kGiB;
    if (sets_[c]->count() == n) {
      for (int s = 0; s < n; ++s) sets_[c]->replace(s, values[s]);
    } else {
      sets_[c]->remove(0, sets_[c]->count());
      sets_[c]->append(values);
    }
  }
  const double cap = e.memory.gpu_memory_bytes / kGiB;
  capacity_->replace(QList<QPointF>{{-0.5, cap}, {n - 0.5, cap}});
  y_->setRange(0, std::max(cap, e.memory.peak_bytes / kGiB) * 1.1);
  y_->setTickCount(6);
  y_->applyNiceNumbers();
  const StageMemory& w = stages[e.memory.worst_stage];
  if (e.memory.fits)
    verdict_->setText(QString("<b>Fits</b> — worst rank (stage %1) needs %2 of %3 (%4 free).")
                          .arg(w.stage).arg(gib(e.memory.peak_bytes)).arg(gib(e.memory.gpu_memory_bytes))
                          .arg(gib(e.memory.gpu_memory_bytes - e.memory.peak_bytes)));
  else
    verdict_->setText(QString("<b>Does not fit</b> — worst rank (stage %1) needs %2 on a %3 GPU (short by %4).")
                          .arg(w.stage).arg(gib(e.memory.peak_bytes)).arg(gib(e.memory.gpu_memory_bytes))
                          .arg(gib(e.memory.peak_bytes - e.memory.gpu_memory_bytes)));
  verdict_->setStyleSheet(e.memory.fits ? "color: #1b5e20;" : "color: #b00020;");
}

void MemoryView::hovered(int category, bool on, int stage) {
  if (!on || stage < 0 || stage >= static_cast<int>(last_.per_stage.size())) {
    QToolTip::hideText();
    return;
  }
  const StageMemory& s = last_.per_stage[stage];
  const double bytes = category_bytes(s, category);
  QString extra;
  if (category == 4)
    extra = QString("<br>%1 micro-batch(es) in flight hold %2; working set %3")
                .arg(s.inflight_microbatches, 0, 'g', 3).arg(gib(s.saved_activation_bytes)).arg(gib(s.working_bytes));
  if (category == 6)
    extra = QString("<br>CUDA context %1, NCCL %2, allocator headroom %3")
                .arg(gib(s.cuda_context_bytes)).arg(gib(s.nccl_bytes)).arg(gib(s.headroom_bytes));
  QToolTip::showText(QCursor::pos(), QString("<b>stage %1 — %2</b><br>%3 (%4 bytes)%5<br><i>%6</i>")
                                         .arg(stage).arg(categoryName(category)).arg(gib(bytes)).arg(count(bytes))
                                         .arg(extra).arg(categorySource(category)));
}

void MemoryView::setCompact() {
  view_->setMinimumHeight(150);
  chart_->legend()->setAlignment(Qt::AlignRight);
  chart_->setTitle("Memory per GPU (worst GPUs by stage)");
}

double MemoryView::barValue(int category, int stage) const { return sets_[category]->at(stage); }
int MemoryView::stageCount() const { return sets_[0]->count(); }

}  // namespace paraplan::gui

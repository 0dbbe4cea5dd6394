#include "search_tab.hpp"

#include <QChart>
#include <QChartView>
#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineSeries>
#include <QProgressBar>
#include <QPushButton>
#include <QScatterSeries>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QSplitter>
#include <QStandardItemModel>
#include <QTableView>
#include <QValueAxis>
#include <QVBoxLayout>

#include "gui_format.hpp"

namespace paraplan::gui {

using namespace planner;

namespace {
constexpr double kGiB = double(1ull << 30);
constexpr int kIndexRole = Qt::UserRole + 1;

QStandardItem* num(double v, const QString& text) {
  auto* it = new QStandardItem(text);
  it->setData(v, Qt::UserRole);  // sorted by value, not by text
  it->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
  return it;
}
QStandardItem* txt(const QString& t) { return new QStandardItem(t); }
}  // namespace

SearchTab::SearchTab(PlanSession* session, QWidget* parent) : QWidget(parent), session_(session) {
  start_ = new QPushButton("Search all plans");
  cancel_ = new QPushButton("Cancel");
  cancel_->setEnabled(false);
  progress_ = new QProgressBar;
  progress_->setFormat("%p% of layouts");
  gpus_ = new QSpinBox;
  gpus_->setRange(1, 1 << 20);
  setCountSuffix(gpus_, " GPU", " GPUs");
  top_ = new QSpinBox;
  top_->setRange(1, 5000);
  top_->setValue(200);
  top_->setPrefix("keep best ");
  sort_ = new QComboBox;
  sort_->addItem("by throughput", static_cast<int>(SearchSort::throughput));
  sort_->addItem("by peak memory", static_cast<int>(SearchSort::memory));
  sort_->addItem("by cost per token", static_cast<int>(SearchSort::cost));
  status_ = new QLabel("Searches every dp/tp/pp/cp/ep, ZeRO stage, schedule, micro-batch, recompute and offload "
                       "for the model and training on the left.");
  status_->setWordWrap(true);
  auto* bar = new QHBoxLayout;
  bar->addWidget(gpus_);
  bar->addWidget(sort_);
  bar->addWidget(top_);
  bar->addWidget(start_);
  bar->addWidget(cancel_);
  bar->addWidget(progress_, 1);

  model_ = new QStandardItemModel(this);
  // The outcome first, so that it stays in view however narrow the window; then the layout.
  model_->setHorizontalHeaderLabels({"#", "step (s)", "tokens/s", "MFU", "peak (GiB)", "dp", "tp", "pp", "cp", "ep",
                                     "ZeRO", "SP", "schedule", "micro-batch", "recompute", "offload"});
  proxy_ = new QSortFilterProxyModel(this);
  proxy_->setSourceModel(model_);
  proxy_->setSortRole(Qt::UserRole);
  table_ = new QTableView;
  table_->setModel(proxy_);
  table_->setSortingEnabled(true);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setSelectionMode(QAbstractItemView::SingleSelection);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->verticalHeader()->hide();
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  table_->setToolTip("Click a row to load that plan into the panels on the left");

  auto* chart = new QChart;
  chart->setTitle("Peak memory vs step time (Pareto front in red)");
  points_ = new QScatterSeries;
  points_->setName("fitting plans");
  points_->setMarkerSize(7);
  points_->setColor(QColor("#4e79a7"));
  front_ = new QLineSeries;
  front_->setName("Pareto front");
  front_->setPointsVisible(true);
  QPen pen(QColor("#e15759"));
  pen.setWidth(2);
  front_->setPen(pen);
  chart->addSeries(points_);
  chart->addSeries(front_);
  x_ = new QValueAxis;
  x_->setTitleText("peak memory per GPU (GiB)");
  y_ = new QValueAxis;
  y_->setTitleText("step time (s)");
  chart->addAxis(x_, Qt::AlignBottom);
  chart->addAxis(y_, Qt::AlignLeft);
  for (auto* s : {static_cast<QAbstractSeries*>(points_), static_cast<QAbstractSeries*>(front_)}) {
    s->attachAxis(x_);
    s->attachAxis(y_);
  }
  chart->legend()->setAlignment(Qt::AlignBottom);
  view_ = new QChartView(chart);
  view_->setRenderHint(QPainter::Antialiasing);

  auto* split = new QSplitter(Qt::Vertical);
  split->addWidget(table_);
  split->addWidget(view_);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 2);
  auto* lay = new QVBoxLayout(this);
  lay->addLayout(bar);
  lay->addWidget(status_);
  lay->addWidget(split, 1);

  connect(start_, &QPushButton::clicked, this, &SearchTab::start);
  connect(cancel_, &QPushButton::clicked, this, &SearchTab::cancel);
  connect(table_, &QTableView::clicked, this, [this](const QModelIndex& idx) {
    const int i = proxy_->mapToSource(idx).siblingAtColumn(0).data(kIndexRole).toInt();
    if (i >= 0 && i < static_cast<int>(result_.top.size())) Q_EMIT planSelected(result_.top[i].plan);
  });
  connect(session_, &PlanSession::planChanged, this, [this] {
    if (!running()) gpus_->setValue(session_->plan().cluster.gpus);
  });
  gpus_->setValue(session_->plan().cluster.gpus);
}

SearchTab::~SearchTab() {
  cancel_flag_ = true;
  if (worker_.joinable()) worker_.join();
}

void SearchTab::start() {
  if (running()) return;
  cancel_flag_ = false;
  start_->setEnabled(false);
  cancel_->setEnabled(true);
  progress_->setValue(0);
  status_->setText("Searching…");
  const Plan base = session_->plan();
  SearchOptions opt;
  opt.gpus = gpus_->value();
  opt.top_k = top_->value();
  opt.sort = static_cast<SearchSort>(sort_->currentData().toInt());
  opt.cancel = &cancel_flag_;
  opt.progress = [this](uint64_t done, uint64_t total) {
    const int pct = static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(std::max<uint64_t>(1, total)));
    QMetaObject::invokeMethod(progress_, [this, pct] { progress_->setValue(pct); }, Qt::QueuedConnection);
  };
  worker_ = std::thread([this, base, opt] {
    SearchResult r;
    QString error;
    try {
      r = search(base, opt);
    } catch (const std::exception& e) {
      error = QString::fromStdString(e.what());  // PlanError: field, value and rule
    }
    QMetaObject::invokeMethod(this, [this, r, error] { done(r, error); }, Qt::QueuedConnection);
  });
}

void SearchTab::cancel() { cancel_flag_ = true; }

void SearchTab::done(const SearchResult& r, const QString& error) {
  if (worker_.joinable()) worker_.join();
  result_ = r;
  start_->setEnabled(true);
  cancel_->setEnabled(false);
  if (!error.isEmpty()) {
    progress_->setValue(0);
    model_->removeRows(0, model_->rowCount());
    points_->clear();
    front_->clear();
    status_->setText("<span style='color:#b00020'>Search failed: " + error.toHtmlEscaped() + "</span>");
    Q_EMIT finished();
    return;
  }
  progress_->setValue(r.cancelled ? progress_->value() : 100);
  model_->removeRows(0, model_->rowCount());
  double max_peak = 0, max_step = 0;
  QList<QPointF> pts, front;
  for (size_t i = 0; i < r.top.size(); ++i) {
    const Candidate& c = r.top[i];
    const auto& p = c.plan.parallel;
    QString sched = p.pp > 1 ? QString(to_string(p.pp_schedule)) : "-";
    if (p.virtual_stages > 1) sched += QString(" v%1").arg(p.virtual_stages);
    auto* rank = num(static_cast<double>(i + 1), QString::number(i + 1));
    rank->setData(static_cast<int>(i), kIndexRole);
    model_->appendRow({rank, num(c.step_s, QString::number(c.step_s, 'f', 3)), num(c.tokens_per_s, count(c.tokens_per_s)),
                       num(c.mfu, percent(c.mfu)), num(c.peak_bytes, QString::number(c.peak_bytes / kGiB, 'f', 2)),
                       num(p.dp, QString::number(p.dp)), num(p.tp, QString::number(p.tp)),
                       num(p.pp, QString::number(p.pp)), num(p.cp, QString::number(p.cp)), num(p.ep, QString::number(p.ep)),
                       num(p.zero, QString::number(p.zero)), txt(p.sequence_parallel ? "yes" : "-"), txt(sched),
                       num(c.plan.training.micro_batch, QString::number(c.plan.training.micro_batch)),
                       txt(to_string(c.plan.training.recompute)), txt(to_string(c.plan.training.offload))});
    pts << QPointF(c.peak_bytes / kGiB, c.step_s);
    max_peak = std::max(max_peak, c.peak_bytes / kGiB);
    max_step = std::max(max_step, c.step_s);
  }
  for (const Candidate& c : r.pareto) {
    front << QPointF(c.peak_bytes / kGiB, c.step_s);
    max_peak = std::max(max_peak, c.peak_bytes / kGiB);
    max_step = std::max(max_step, c.step_s);
  }
  points_->replace(pts);
  front_->replace(front);
  x_->setRange(0, std::max(1.0, max_peak * 1.05));
  x_->applyNiceNumbers();
  y_->setRange(0, std::max(1e-3, max_step * 1.05));
  y_->applyNiceNumbers();
  table_->sortByColumn(0, Qt::AscendingOrder);
  const QString same = r.equivalent > 0 ? QString(" (%1 of them the same plan one ZeRO stage lower, listed once)")
                                                .arg(count(static_cast<double>(r.equivalent)))
                                          : QString();
  status_->setText(QString("%1 plans evaluated in %2 (%3 plans/s), %4 fit%5; showing the best %6%7. Click a row to load it.")
                       .arg(count(static_cast<double>(r.evaluated)), seconds(r.seconds),
                            count(static_cast<double>(r.evaluated) / std::max(r.seconds, 1e-9)),
                            count(static_cast<double>(r.fitting)), same)
                       .arg(r.top.size())
                       .arg(r.cancelled ? " (cancelled: partial results)" : ""));
  Q_EMIT finished();
}

}  // namespace paraplan::gui

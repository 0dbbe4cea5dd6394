#pragma once
// The exhaustive search, run off the GUI thread with progress and cancel; a sortable table of ranked
// plans and a scatter of peak memory against step time with the Pareto front. Clicking a row loads
// that plan.
#include <QWidget>
#include <atomic>
#include <thread>

#include "paraplan/search.hpp"
#include "plan_session.hpp"

class QPushButton;
class QProgressBar;
class QSpinBox;
class QComboBox;
class QLabel;
class QTableView;
class QStandardItemModel;
class QSortFilterProxyModel;
class QChartView;
class QScatterSeries;
class QLineSeries;
class QValueAxis;

namespace paraplan::gui {

class SearchTab : public QWidget {
  Q_OBJECT
 public:
  SearchTab(PlanSession* session, QWidget* parent = nullptr);
  ~SearchTab() override;

  bool running() const { return worker_.joinable(); }
  const planner::SearchResult& result() const { return result_; }
  QTableView* table() const { return table_; }
  QChartView* chartView() const { return view_; }

 public Q_SLOTS:
  void start();
  void cancel();

 Q_SIGNALS:
  void finished();
  void planSelected(const planner::Plan& plan);

 private:
  void done(const planner::SearchResult& r, const QString& error);
  PlanSession* session_;
  QPushButton *start_, *cancel_;
  QProgressBar* progress_;
  QSpinBox *gpus_, *top_;
  QComboBox* sort_;
  QLabel* status_;
  QTableView* table_;
  QStandardItemModel* model_;
  QSortFilterProxyModel* proxy_;
  QChartView* view_;
  QScatterSeries* points_;
  QLineSeries* front_;
  QValueAxis *x_, *y_;
  std::thread worker_;
  std::atomic<bool> cancel_flag_{false};
  planner::SearchResult result_;
};

}  // namespace paraplan::gui

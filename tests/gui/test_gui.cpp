// The GUI, driven like a user under QT_QPA_PLATFORM=offscreen. Expected numbers come from the planner
// called directly on the same plan (the GUI must show exactly what the planner says), from the
// paraplan CLI, or from the store the test writes.
#include <QApplication>
#include <QCheckBox>
#include <QLineEdit>
#include <QProgressBar>
#include <QBarSet>
#include <QChartView>
#include <QComboBox>
#include <QDir>
#include <QDockWidget>
#include <QFile>
#include <QLabel>
#include <QPlainTextEdit>
#include <QProcess>
#include <QScrollArea>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTabWidget>
#include <QTableView>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>
#include <nlohmann/json.hpp>

#include "inputs_panel.hpp"
#include "exercise_panel.hpp"
#include "learn_tab.hpp"
#include "main_window.hpp"
#include "memory_view.hpp"
#include "parallel_panel.hpp"
#include "paraplan/calibration.hpp"
#include "paraplan/measurements.hpp"
#include "paraplan/memory.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/store.hpp"
#include "paraplan/validation.hpp"
#include "runs_tab.hpp"
#include "search_tab.hpp"
#include "gantt_view.hpp"
#include "gui_format.hpp"
#include "time_view.hpp"
#include "timeline_tab.hpp"
#include <QLineSeries>
#include <QChart>
#include <QHorizontalBarSeries>
#include <QValueAxis>
#include <memory>

#include "paraplan/plot/chart_qt.hpp"

using namespace paraplan;
using namespace paraplan::gui;

namespace {

planner::Plan plan_of(const char* json) { return planner::plan_from_json(nlohmann::json::parse(json)); }

void choose(QComboBox* c, int value) {  // what a user does: pick the entry, which emits activated
  const int i = c->findData(value);
  QVERIFY2(i >= 0, qPrintable(QString("value %1 not offered").arg(value)));
  c->setCurrentIndex(i);
  Q_EMIT c->activated(i);
}

QLabel* visible_message(QWidget* root, const QString& needle) {
  for (QLabel* l : root->findChildren<QLabel*>())
    if (l->isVisibleTo(root) && l->text().contains(needle)) return l;
  return nullptr;
}

void screenshot(QWidget* w, const QString& name) {
  QDir().mkpath(SCREENSHOT_DIR);
  QApplication::processEvents();
  QVERIFY(w->grab().save(QString(SCREENSHOT_DIR) + "/" + name + ".png"));
}

}  // namespace

class GuiTest : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void init() {
    window_ = std::make_unique<MainWindow>();
    window_->resize(1500, 1000);
    window_->show();
    QVERIFY(QTest::qWaitForWindowExposed(window_.get()));
  }
  void cleanup() { window_.reset(); }

  // LLaMA-3-70B on 8 H100s: tp 1 -> 8 updates the memory bars to exactly the planner's numbers.
  void tensorParallelUpdatesMemoryBars() {
    window_->session()->setPlan(plan_of(R"({"model": "llama3-70b", "training": {"seq_len": 4096,
        "global_batch": 64, "recompute": "selective"}, "parallel": {"dp": 8, "zero": 1}, "cluster": {"gpus": 8}})"));
    choose(window_->parallel()->tpCombo(), 8);
    QCOMPARE(window_->session()->plan().parallel.tp, 8);
    QCOMPARE(window_->session()->plan().parallel.dp, 1);
    const planner::MemoryBreakdown expected = planner::estimate_memory(plan_of(R"({"model": "llama3-70b",
        "training": {"seq_len": 4096, "global_batch": 64, "recompute": "selective"},
        "parallel": {"dp": 1, "tp": 8, "zero": 1}, "cluster": {"gpus": 8}})"));
    MemoryView* view = window_->memoryView();
    QCOMPARE(view->stageCount(), 1);
    const planner::StageMemory& s = expected.per_stage[0];
    const double gib = double(1ull << 30);
    const double want[MemoryView::kCategories] = {s.weights_bytes, s.gradients_bytes, s.master_weights_bytes,
                                                  s.optimizer_bytes, s.activations_bytes, s.buffers_bytes, s.overhead_bytes};
    for (int c = 0; c < MemoryView::kCategories; ++c) QCOMPARE(view->barValue(c, 0), want[c] / gib);
    // H100s under the default profile, fitted on A100 rows: the step time's summary says so.
    QVERIFY2(window_->timeView()->summaryText().contains("calibration \"published\", fitted on a100-80gb rows, not this GPU's"),
             qPrintable(window_->timeView()->summaryText()));
    // ... and names the built-in profile of the H100's own rows (data/calibration/mbridge-h100.json).
    QVERIFY2(window_->timeView()->summaryText().contains("this GPU's own, \"mbridge-h100\", can be chosen under Cluster, calibration"),
             qPrintable(window_->timeView()->summaryText()));
    screenshot(window_.get(), "plan-tab");
  }

  // The plan's calibration is chosen under Cluster (the CLI's --calibration): the H100's own profile
  // replaces the A100-fitted default in the plan and in the step time's summary, and a GPU change goes
  // back to the default, which the selector then shows.
  void calibrationSelectorSetsThePlansProfile() {
    QComboBox* c = window_->inputs()->calibrationCombo();
    QCOMPARE(c->currentData().toString(), QString("published"));
    c->setCurrentIndex(c->findData(QString("mbridge-h100")));
    QCOMPARE(window_->session()->plan().cluster.calibration.name, std::string("mbridge-h100"));
    const QString text = window_->timeView()->summaryText();
    QVERIFY2(text.contains("calibration \"mbridge-h100\")"), qPrintable(text));  // fitted on this GPU: no note
    QVERIFY2(!text.contains("not this GPU's"), qPrintable(text));
    QComboBox* gpu = window_->inputs()->gpuCombo();
    gpu->setCurrentIndex(gpu->findData(QString("a100-80gb")));
    QCOMPARE(window_->session()->plan().cluster.calibration.name, std::string("published"));
    QCOMPARE(c->currentData().toString(), QString("published"));
    // A plan with a profile file: the list gains it, by its file name (its path is the item's data).
    QTemporaryDir dir;
    const QString file = dir.filePath("my-profile.json");
    QVERIFY(QFile::copy(QString(PARAPLAN_SOURCE_DIR) + "/data/calibration/mbridge-h100.json", file));
    const planner::Calibration mine = planner::load_calibration(file.toStdString());
    window_->session()->update([&](planner::Plan& p) { p.cluster.calibration = mine; });
    QVERIFY2(c->currentText().endsWith("(file my-profile.json)"), qPrintable(c->currentText()));
    QCOMPARE(c->currentData().toString(), QString::fromStdString(mine.origin));
  }

  // A MoE plan's step time comes with the model's record on the published MoE runs (the CLI's line);
  // a dense plan's does not.
  void aMoePlanSaysHowFarMoeStepTimesWereOff() {
    window_->session()->setPlan(plan_of(R"({"model": "qwen3-30b-a3b", "training": {"seq_len": 4096,
        "global_batch": 512, "precision": "fp8"}, "parallel": {"dp": 8, "ep": 8, "zero": 1},
        "cluster": {"gpu": "b200", "gpus": 8}})"));
    const planner::TrackRecord r = planner::moe_track_record();
    QVERIFY(r.rows >= 12);
    const QString want = QString("on %1 published MoE runs (%5 of them in no fit) it predicted %2% to %3% of the measured "
                                 "step time, %4 of %1 too fast")
                             .arg(r.rows)
                             .arg(QString::asprintf("%+.1f", 100 * r.min_error), QString::asprintf("%+.1f", 100 * r.max_error))
                             .arg(r.too_fast)
                             .arg(r.in_no_fit);
    QVERIFY2(window_->timeView()->summaryText().contains(want), qPrintable(window_->timeView()->summaryText()));
    window_->session()->setPlan(plan_of(R"({"model": "llama3-8b", "training": {"seq_len": 4096, "global_batch": 64},
        "parallel": {"dp": 8}, "cluster": {"gpus": 8}})"));
    QVERIFY(!window_->timeView()->summaryText().contains("MoE"));
  }

  // The window fits a 1366 x 768 laptop screen: its minimum size, whatever tab is open, leaves room for a
  // title bar and a panel (the Learn tab's tour had made it 1239 x 848).
  void theWindowFitsALaptopScreen() {
    auto* tabs = window_->findChild<QTabWidget*>();
    for (int t = 0; t < tabs->count(); ++t) {
      tabs->setCurrentIndex(t);
      QApplication::processEvents();
      const QSize min = window_->minimumSizeHint();
      QVERIFY2(min.width() <= 1366 && min.height() <= 700,
               qPrintable(QString("tab %1: minimum %2 x %3").arg(tabs->tabText(t)).arg(min.width()).arg(min.height())));
    }
  }

  // A count reads as one: "1 epoch", "5 epochs" (it read "1 epochs", "1 GPU(s)").
  void aCountsUnitIsSingularAtOne() {
    QSpinBox box;
    box.setRange(0, 10);
    box.setValue(1);
    setCountSuffix(&box, " epoch", " epochs");
    QCOMPARE(box.text(), QString("1 epoch"));
    box.setValue(5);
    QCOMPARE(box.text(), QString("5 epochs"));
    box.setValue(0);
    QCOMPARE(box.text(), QString("0 epochs"));
    // The panels show a plan with their boxes' signals blocked: the GPU count still reads right.
    auto gpu_counts = [&] {
      QStringList texts;
      for (QSpinBox* b : window_->inputs()->findChildren<QSpinBox*>())
        if (b->suffix().contains("GPU")) texts << b->text();
      return texts;
    };
    window_->session()->setPlan(plan_of(R"({"model": "llama3-8b", "parallel": {"dp": 1}, "cluster": {"gpus": 1}})"));
    QCOMPARE(gpu_counts(), QStringList{"1 GPU"});
    QVERIFY(visible_message(window_->parallel(), "1  (= 1 GPU / (tp 1 x pp 1 x cp 1))"));  // the dp line too
    window_->session()->setPlan(plan_of(R"({"model": "llama3-8b", "parallel": {"dp": 8}, "cluster": {"gpus": 8}})"));
    QCOMPARE(gpu_counts(), QStringList{"8 GPUs"});
  }

  // The schedule list offers only what the plan allows: interleaving needs the micro-batches (global
  // batch / (dp x micro-batch)) to be a multiple of pp. 8 GPUs as dp 2 x pp 4: 48 / 2 = 24 micro-batches
  // (a multiple of 4) offers it; 44 / 2 = 22 does not; pp 1 offers no pipeline schedule at all.
  void scheduleListOffersOnlyValidSchedules() {
    auto offered = [&](planner::PipelineSchedule s) {
      return window_->parallel()->scheduleCombo()->findData(static_cast<int>(s)) >= 0;
    };
    window_->session()->setPlan(plan_of(R"({"model": "llama3-8b", "training": {"seq_len": 4096,
        "global_batch": 48}, "parallel": {"dp": 2, "pp": 4}, "cluster": {"gpus": 8}})"));
    QVERIFY(offered(planner::PipelineSchedule::interleaved));
    QVERIFY(offered(planner::PipelineSchedule::zbv));
    window_->session()->update([](planner::Plan& p) { p.training.global_batch = 44; });
    QVERIFY(!offered(planner::PipelineSchedule::interleaved));
    QVERIFY(offered(planner::PipelineSchedule::zb_h1));
    window_->session()->update([](planner::Plan& p) {
      p.parallel.pp = 1;
      p.training.global_batch = 48;
    });
    QVERIFY(!offered(planner::PipelineSchedule::interleaved));
    QVERIFY(!offered(planner::PipelineSchedule::zb_h1));
    QVERIFY(offered(planner::PipelineSchedule::one_f_one_b));
  }

  // Every plan the parallel panel can offer, picked as a user picks it, is one `paraplan plan` accepts
  // (the options come from the planner's legality generators). LLaMA-3-8B on 16 GPUs, and a 6-layer
  // model on 8 where ZBV (2 pp chunks) must not be offered at pp 4 — the panel used to offer it.
  void everyOfferedPlanIsValid() {
    auto items = [](QComboBox* c) {
      std::vector<int> v;
      for (int i = 0; i < c->count(); ++i) v.push_back(c->itemData(i).toInt());
      return v;
    };
    ParallelPanel* panel = window_->parallel();
    int checked = 0;
    for (const char* doc :
         {R"({"model": "llama3-8b", "training": {"seq_len": 4096, "global_batch": 64}, "cluster": {"gpus": 16, "gpus_per_node": 16}})",
          R"({"model": {"name": "six", "layers": 6, "hidden": 256, "heads": 8, "ffn_hidden": 1024, "vocab": 1000},
              "training": {"seq_len": 1024, "global_batch": 32}, "cluster": {"gpus": 8}})"}) {
      window_->session()->setPlan(plan_of(doc));
      for (int tp : items(panel->tpCombo())) {
        choose(panel->tpCombo(), tp);
        for (int cp : items(panel->cpCombo())) {
          // The cp options depend on pp (and the schedule on pp): back to no pipeline before moving cp.
          choose(panel->scheduleCombo(), static_cast<int>(planner::PipelineSchedule::one_f_one_b));
          choose(panel->ppCombo(), 1);
          choose(panel->cpCombo(), cp);
          for (int pp : items(panel->ppCombo())) {
            choose(panel->scheduleCombo(), static_cast<int>(planner::PipelineSchedule::one_f_one_b));
            choose(panel->ppCombo(), pp);
            for (int s : items(panel->scheduleCombo())) {
              choose(panel->scheduleCombo(), s);
              for (int v : items(panel->virtualStagesCombo())) {
                choose(panel->virtualStagesCombo(), v);
                const Evaluation& e = window_->session()->evaluation();
                QVERIFY2(e.valid, qPrintable(QString("tp %1 cp %2 pp %3 schedule %4 v %5: %6")
                                                 .arg(tp).arg(cp).arg(pp).arg(s).arg(v)
                                                 .arg(e.violations.empty() ? "" : QString::fromStdString(e.violations[0].to_string()))));
                ++checked;
              }
            }
          }
        }
        choose(panel->scheduleCombo(), static_cast<int>(planner::PipelineSchedule::one_f_one_b));
        choose(panel->ppCombo(), 1);
        choose(panel->cpCombo(), 1);
      }
      if (window_->session()->plan().model.layers == 6) {
        window_->session()->update([](planner::Plan& p) { p.parallel.tp = 1; p.parallel.cp = 1; p.parallel.pp = 4; });
        QVERIFY(panel->scheduleCombo()->findData(static_cast<int>(planner::PipelineSchedule::zbv)) < 0);
        QVERIFY(panel->scheduleCombo()->findData(static_cast<int>(planner::PipelineSchedule::zb_h1)) >= 0);
      }
    }
    QVERIFY(checked > 50);
  }

  // Picking a GPU whose NVLink domain spans a rack moves a node size left at the default with it: 64
  // H100s at 8 a node become 64 GB200s in one NVL72 rack (16 trays of 4, under the rack's 18:
  // default_gpus_per_node); a node size the user chose stays when the GPU changes back.
  void aRackScaleGpuMovesTheDefaultNodeSize() {
    window_->session()->setPlan(plan_of(R"({"model": "llama3-8b", "training": {"seq_len": 4096,
        "global_batch": 64}, "parallel": {"dp": 64}, "cluster": {"gpus": 64}})"));
    QCOMPARE(window_->session()->plan().cluster.gpus_per_node, 8);
    QComboBox* gpu = window_->inputs()->gpuCombo();
    gpu->setCurrentIndex(gpu->findData(QString("gb200")));
    QCOMPARE(window_->session()->plan().cluster.gpus_per_node, 64);
    QCOMPARE(window_->inputs()->perNodeSpin()->value(), 64);
    window_->inputs()->perNodeSpin()->setValue(32);
    gpu->setCurrentIndex(gpu->findData(QString("h100-sxm-80gb")));
    QCOMPARE(window_->session()->plan().cluster.gpus_per_node, 32);
    QVERIFY(window_->session()->evaluation().valid);
  }

  // The MoE all-to-all overlap is offered only with expert parallelism, and ticking it sets the plan's
  // ep_comm_overlap.
  void allToAllOverlapNeedsExpertParallelism() {
    window_->session()->setPlan(plan_of(R"({"model": "qwen3-30b-a3b", "training": {"seq_len": 4096,
        "global_batch": 16}, "parallel": {"dp": 8}, "cluster": {"gpus": 8}})"));
    QCheckBox* box = window_->parallel()->epOverlapCheck();
    QVERIFY(!box->isEnabled());
    window_->session()->update([](planner::Plan& p) { p.parallel.ep = 8; });
    QVERIFY(box->isEnabled());
    box->setChecked(true);
    QVERIFY(window_->session()->plan().parallel.ep_comm_overlap);
    QVERIFY(window_->session()->evaluation().valid);
  }

  // The pipeline-transfer overlap is offered only for Megatron-Core's interleaved schedule; unticking it
  // sets parallel.pp_comm_overlap false, and the step, which then waits for every transfer, gets longer.
  void pipelineTransferOverlapNeedsTheInterleavedSchedule() {
    window_->session()->setPlan(plan_of(R"({"model": "llama3-8b", "training": {"seq_len": 8192,
        "global_batch": 64}, "parallel": {"dp": 2, "pp": 4}, "cluster": {"gpus": 8}})"));
    QCheckBox* box = window_->parallel()->ppOverlapCheck();
    QVERIFY(!box->isEnabled());
    window_->session()->update([](planner::Plan& p) {
      p.parallel.pp_schedule = planner::PipelineSchedule::interleaved;
      p.parallel.virtual_stages = 2;
    });
    QVERIFY(box->isEnabled());
    QVERIFY(box->isChecked());
    const double overlapped = window_->session()->evaluation().time.step_s;
    box->setChecked(false);
    QVERIFY(!window_->session()->plan().parallel.pp_comm_overlap);
    QVERIFY(window_->session()->evaluation().time.step_s > overlapped);
  }

  // The cross-entropy selector sets training.cross_entropy; Transformer Engine's fused loss keeps the 16-bit
  // logits instead of fp32 ones: the head stage's peak falls by at least 2 B x 8,192 tokens x 128,256.
  void crossEntropySelectorSetsThePlan() {
    window_->session()->setPlan(plan_of(R"({"model": "llama3-8b", "training": {"seq_len": 8192,
        "global_batch": 8}, "parallel": {"dp": 8}, "cluster": {"gpus": 8}})"));
    QComboBox* loss = window_->inputs()->lossCombo();
    QCOMPARE(loss->currentData().toInt(), static_cast<int>(planner::CrossEntropy::unfused));
    const double before = window_->session()->evaluation().memory.peak_bytes;
    loss->setCurrentIndex(loss->findData(static_cast<int>(planner::CrossEntropy::te)));
    QCOMPARE(window_->session()->plan().training.cross_entropy, planner::CrossEntropy::te);
    QVERIFY(window_->session()->evaluation().valid);
    QVERIFY(before - window_->session()->evaluation().memory.peak_bytes >= 2.0 * 8192 * 128256);
  }

  // A value that breaks a rule shows the planner's message next to the field, and nothing crashes.
  void invalidValueShowsTheMessage() {
    window_->inputs()->globalBatchSpin()->setValue(1001);
    QLabel* l = visible_message(window_->inputs(), "must be divisible by dp*micro_batch");
    QVERIFY2(l, "no message under the global batch");
    QVERIFY(l->text().contains("training.global_batch = 1001"));
    QVERIFY(!window_->session()->evaluation().valid);
    window_->inputs()->globalBatchSpin()->setValue(1024);
    QVERIFY(window_->session()->evaluation().valid);
    QVERIFY(!visible_message(window_->inputs(), "must be divisible"));
  }

  // The search fills the table, and its best row is `paraplan search`'s best.
  void searchMatchesTheCli() {
    QTemporaryDir dir;
    const QString plan = dir.filePath("plan.json");
    QVERIFY(window_->savePlan(plan));
    SearchTab* tab = window_->searchTab();
    window_->tabs()->setCurrentWidget(tab);
    QSignalSpy done(tab, &SearchTab::finished);
    tab->start();
    QVERIFY(done.wait(60000));
    QVERIFY(tab->table()->model()->rowCount() > 0);
    QProcess cli;
    cli.start(PARAPLAN_BIN, {"search", plan, "--json", "--top", "1"});
    QVERIFY(cli.waitForFinished(60000));
    const auto j = nlohmann::json::parse(cli.readAllStandardOutput().toStdString());
    const double cli_best = j["top"][0]["step_s"].get<double>();
    QCOMPARE(tab->result().top.front().step_s, cli_best);
    // What the table shows in its first row (sortable, so check the view, not only the result).
    const QAbstractItemModel* shown = tab->table()->model();
    QCOMPARE(shown->headerData(1, Qt::Horizontal).toString(), QString("step (s)"));
    QCOMPARE(shown->index(0, 1).data(Qt::UserRole).toDouble(), cli_best);
    QCOMPARE(shown->index(0, 1).data().toString(), QString::number(cli_best, 'f', 3));
    QCOMPARE(qRound64(shown->index(0, 4).data(Qt::UserRole).toDouble()),
             j["top"][0]["peak_bytes"].get<qint64>());  // the CLI writes whole bytes, rounded
    QCOMPARE(QString::fromStdString(planner::plan_to_json(tab->result().top.front().plan).dump()),
             QString::fromStdString(j["top"][0]["plan"].dump()));
    screenshot(window_.get(), "search-tab");
    // clicking the best row loads its plan
    tab->table()->selectRow(0);
    Q_EMIT tab->table()->clicked(tab->table()->model()->index(0, 0));
    QCOMPARE(window_->session()->plan().parallel.zero, tab->result().top.front().plan.parallel.zero);
    QCOMPARE(window_->session()->plan().training.micro_batch, tab->result().top.front().plan.training.micro_batch);
  }

  // The runs tab reads a store written here: two runs, their status, predicted and measured memory.
  void runsTabReadsAStore() {
    QTemporaryDir dir;
    const QString db = dir.filePath("runs.sqlite");
    {
      planner::Store store(db.toStdString());
      planner::NewRun r;
      r.plan_json = planner::plan_to_json(window_->session()->plan()).dump();
      r.name = "tiny dp=2";
      r.world_size = 2;
      r.steps = 3;
      r.predicted_peak_bytes = 3.0 * (1 << 20);
      r.predicted_step_s = 0.25;
      const int64_t a = store.create_run(r);
      store.set_running(a);
      for (int step = 1; step <= 3; ++step)
        for (int rank = 0; rank < 2; ++rank) store.add_step({a, rank, step, 5.0 - step, 0.3, 0.05, 1000});
      store.add_memory({{a, 0, "weights", 1.0 * (1 << 20), 1.0 * (1 << 20)}, {a, 0, "peak", 3.0 * (1 << 20), 3.1 * (1 << 20)}});
      store.finish_run(a);
      const int64_t b = store.create_run(r);
      store.fail_run(b, "rank 1: safetensors file model.safetensors is truncated");
    }
    RunsTab* tab = window_->runsTab();
    window_->tabs()->setCurrentWidget(tab);
    tab->openStore(db);
    QCOMPARE(tab->runCount(), 2);
    QCOMPARE(tab->table()->item(0, 1)->text(), QString("succeeded"));
    QCOMPARE(tab->table()->item(1, 1)->text(), QString("failed"));
    QVERIFY(tab->table()->item(1, RunsTab::kError)->text().contains("truncated"));
    QVERIFY(tab->table()->item(0, 7)->text().contains("300 ms"));  // measured step: mean of steps after the first
    tab->table()->setCurrentCell(0, 0);  // selecting a row shows that run
    // Paired step-time bars, in ms: predicted 0.25 s as stored, measured the mean of steps 2..3 (0.3 s).
    QCOMPARE(tab->stepBars(0)->count(), 1);
    QCOMPARE(tab->stepBars(0)->at(0), 250.0);
    QCOMPARE(tab->stepBars(1)->at(0), 300.0);
    screenshot(window_.get(), "runs-tab");
  }

  // Issue 13: the Runs tab predicts each run uncalibrated and with the selected profile; "Calibrate from
  // these runs" fits one, stores it and selects it. The runs' step times are made by the time model with
  // known parameters (GEMMs at half the datasheet's rate, 20 us of host time per kernel; single workers,
  // so no collective and no shared cores), so the fitted profile must predict each within 1 %, while the
  // datasheet values are more than 10 % off (tests/planner/test_calibrate.cpp recovers the parameters).
  void runsTabCalibratesFromItsRuns() {
    planner::Calibration truth;
    truth.name = "truth";
    truth.params = {{"gemm", 0.5, false, planner::ParamSource::fitted, ""},
                    {"host_overhead_s", 20e-6, false, planner::ParamSource::fitted, ""}};
    QTemporaryDir dir;
    const QString db = dir.filePath("runs.sqlite");
    {
      planner::Store store(db.toStdString());
      int n = 0;
      for (int layers : {2, 4})
        for (int hidden : {128, 256})
          for (int seq : {32, 128}) {
            const nlohmann::json plan_doc = {
                {"model", {{"name", "m"}, {"layers", layers}, {"hidden", hidden}, {"heads", hidden / 32},
                           {"kv_heads", hidden / 64}, {"head_dim", 32}, {"ffn_hidden", hidden * 11 / 4}, {"vocab", 256},
                           {"activation", "swiglu"}, {"norm", "rmsnorm"}, {"position_embedding", "rope"}}},
                {"training", {{"seq_len", seq}, {"micro_batch", 2}, {"global_batch", 4}, {"precision", "fp32"}}},
                {"cluster", {{"gpu", "cpu"}, {"gpus", 1}}}};
            planner::Measurement m;
            m.kind = planner::MeasurementKind::run;
            m.device = "cpu";
            m.plan = planner::plan_from_json(plan_doc);
            const double step_s = planner::predict(m, truth);
            planner::NewRun r;
            r.plan_json = plan_doc.dump();
            r.name = QString("synthetic %1").arg(++n).toStdString();
            r.world_size = 1;
            r.steps = 3;
            const int64_t id = store.create_run(r);
            store.set_running(id);
            for (int step = 1; step <= 3; ++step) store.add_step({id, 0, step, 5.0, step_s, 0, 1000});
            store.finish_run(id);
          }
    }
    RunsTab* tab = window_->runsTab();
    window_->tabs()->setCurrentWidget(tab);
    tab->openStore(db);
    QCOMPARE(tab->runCount(), 8);
    QCOMPARE(tab->profileSelector()->currentText(), QString("none (datasheet values)"));
    auto error_at = [tab](int row, int col) {  // "-12.3%" -> -0.123
      QString t = tab->table()->item(row, col)->text();
      t.chop(1);
      return t.toDouble() / 100;
    };
    for (int row = 0; row < 8; ++row) {
      QVERIFY2(std::fabs(error_at(row, RunsTab::kUncalibratedError)) > 0.10, qPrintable(QString::number(row)));
      // profile "none": the calibrated columns are the uncalibrated ones
      QCOMPARE(tab->table()->item(row, RunsTab::kCalibrated)->text(),
               tab->table()->item(row, RunsTab::kUncalibrated)->text());
    }
    QSignalSpy calibrated(tab, &RunsTab::calibrationFinished);
    tab->calibrateButton()->click();  // the fit runs off the GUI thread
    QVERIFY(calibrated.wait(60000));
    QVERIFY2(tab->detailText().startsWith("Calibrated cpu from 8 rows"), qPrintable(tab->detailText()));
    QVERIFY2(tab->profileSelector()->currentText().startsWith("runs-"), qPrintable(tab->profileSelector()->currentText()));
    QVERIFY(tab->table()->horizontalHeaderItem(RunsTab::kCalibrated)->text().startsWith("calibrated: runs-"));
    for (int row = 0; row < 8; ++row)
      QVERIFY2(std::fabs(error_at(row, RunsTab::kCalibratedError)) < 0.01,
               qPrintable(tab->table()->item(row, RunsTab::kCalibratedError)->text()));
    {
      planner::Store store(db.toStdString());
      const auto cals = store.calibrations();
      QCOMPARE(cals.size(), size_t(1));
      QVERIFY(QFile::exists(dir.filePath(QString::fromStdString(cals[0].name) + ".json")));
    }
    tab->table()->scrollToItem(tab->table()->item(7, RunsTab::kCalibratedError));  // the new columns in view
    screenshot(window_.get(), "runs-tab-calibrated");
    // Back to the datasheet values: the calibrated columns follow the selector.
    tab->profileSelector()->setCurrentIndex(0);
    QCOMPARE(tab->table()->item(0, RunsTab::kCalibrated)->text(), tab->table()->item(0, RunsTab::kUncalibrated)->text());
    // A store with nothing to fit says why, and stores nothing.
    const QString empty = dir.filePath("empty.sqlite");
    { planner::Store store(empty.toStdString()); }
    tab->openStore(empty);
    tab->calibrateButton()->click();
    QVERIFY(calibrated.wait(60000));
    QVERIFY2(tab->detailText().contains("Cannot calibrate: --db: holds no usable measurement"), qPrintable(tab->detailText()));
    QVERIFY(planner::Store(empty.toStdString()).calibrations().empty());
  }

  // "Run this plan" starts `paraplan run` as a child process, streams its output and can cancel it.
  // PARAPLAN_BIN points at a stand-in that prints and waits, so the test does not need LibTorch.
  void runButtonStartsAndCancels() {
    QTemporaryDir dir;
    const QString fake = dir.filePath("paraplan");
    QFile f(fake);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write("#!/bin/sh\necho \"fake paraplan $@\"\nexec sleep 60\n");
    f.close();
    f.setPermissions(QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);
    qputenv("PARAPLAN_BIN", fake.toLocal8Bit());
    RunsTab* tab = window_->runsTab();
    tab->openStore(dir.filePath("runs.sqlite"));
    tab->runPlan();
    QVERIFY(tab->process().waitForStarted(5000));
    QVERIFY(tab->running());
    QTRY_VERIFY_WITH_TIMEOUT(tab->log()->toPlainText().contains("fake paraplan run"), 5000);
    QVERIFY(tab->log()->toPlainText().contains("--steps"));
    QSignalSpy finished(tab, &RunsTab::runFinished);
    tab->cancelRun();
    QVERIFY(finished.wait(10000));
    QVERIFY(!tab->running());
    qunsetenv("PARAPLAN_BIN");
  }

  // The guided tour: full fine-tuning does not fit one GPU; LoRA does, with the base frozen.
  void learnTourShowsWhatMoved() {
    LearnTab* tab = window_->learnTab();
    window_->tabs()->setCurrentWidget(tab);
    tab->goTo(0);
    QVERIFY(!window_->session()->evaluation().memory.fits);
    tab->goTo(1);
    const auto& e = window_->session()->evaluation();
    QVERIFY(e.memory.fits);
    QCOMPARE(window_->session()->plan().training.lora->rank, 8);
    QCOMPARE(tab->deltas()->rowCount(), 8);
    QCOMPARE(tab->deltas()->item(1, 0)->text(), QString("gradients"));
    QVERIFY(tab->deltas()->item(1, 3)->text().startsWith("−"));  // gradients went down
    screenshot(window_.get(), "learn-tab");
    tab->goTo(6);  // ZeRO-3, straight from step 2: "before" is still step 6 (ZeRO-2), the knob it turns
    QCOMPARE(tab->deltas()->horizontalHeaderItem(1)->text(), QString("before (step 6)"));
    QCOMPARE(tab->deltas()->item(1, 3)->text(), QString("same"));  // ZeRO-2 already shards the gradients by dp
    // ZeRO-3 shards the bf16 weights too: 7/8 of 2 B x 8,030,261,248 params leave = 13.09 GiB.
    QCOMPARE(tab->deltas()->item(0, 3)->text(), QString("−13.09 GiB"));
    screenshot(window_.get(), "learn-tab-zero3");
  }

  // The tour's formula line: ZeRO-1 at dp = 8 keeps 2 + 4 + 12/8 = 7.5 B per parameter (teach/tour.hpp).
  void learnTourShowsTheFormula() {
    LearnTab* tab = window_->learnTab();
    tab->goTo(4);
    QVERIFY(tab->formula()->text().contains("2 + 4 + (4 + 8)/dp"));
    QVERIFY(tab->formula()->text().contains("7.500 B x 8,030,261,248"));
  }

  // Exercise 1 from the Learn tab: a real `paraplan demo ddp-lenet` at 1 and 2 workers on 1,280 images,
  // with progress, curves per worker count, the table and the runs in the store.
  void learnExerciseOneRunsAndStores() {
    if (!QFile::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
      QSKIP("the Debian package dataset-fashion-mnist is not installed");
    QTemporaryDir dir;
    qputenv("PARAPLAN_BIN", PARAPLAN_BIN);
    LearnTab* tab = window_->learnTab();
    window_->tabs()->setCurrentWidget(tab);
    tab->pages()->setCurrentWidget(tab->lenetPanel());
    ExercisePanel* p = tab->lenetPanel();
    p->storePath()->setText(dir.filePath("runs.sqlite"));
    p->listOption()->setText("1,2");
    p->lengthOption()->setValue(1);
    p->sampleOption()->setValue(1280);
    QSignalSpy done(p, &ExercisePanel::finished);
    p->start();
    QVERIFY(done.wait(120000));
    QCOMPARE(done.at(0).at(0).toInt(), 0);
    QCOMPARE(p->progress()->value(), 1000);
    QCOMPARE(p->results()->rowCount(), 2);  // one row per worker count
    QCOMPARE(p->results()->item(1, 0)->text(), QString("2"));
    QCOMPARE(p->runs()->rowCount(), 2);     // both runs in the store
    QCOMPARE(p->chartSeries(0), 2);         // a loss curve per worker count
    screenshot(window_.get(), "learn-exercise-1");
    qunsetenv("PARAPLAN_BIN");
  }

  // Exercise 2, quick: pretraining, full fine-tuning and LoRA r = 4 of the 0.13 M-parameter model.
  void learnExerciseTwoRunsAndStores() {
    if (!QFile::exists("/usr/share/games/fortunes/fortunes")) QSKIP("the Debian package fortunes is not installed");
    QTemporaryDir dir;
    qputenv("PARAPLAN_BIN", PARAPLAN_BIN);
    LearnTab* tab = window_->learnTab();
    ExercisePanel* p = tab->loraPanel();
    p->storePath()->setText(dir.filePath("runs.sqlite"));
    p->listOption()->setText("4");
    p->lengthOption()->setValue(3);
    p->sampleOption()->setValue(4);
    p->quickOption()->setChecked(true);
    QVERIFY(p->arguments().contains("--quick"));
    QSignalSpy done(p, &ExercisePanel::finished);
    p->start();
    QVERIFY(done.wait(120000));
    QCOMPARE(done.at(0).at(0).toInt(), 0);
    QCOMPARE(p->results()->rowCount(), 2);  // full fine-tuning, LoRA r=4
    QCOMPARE(p->results()->item(1, 0)->text(), QString("LoRA r=4"));
    QCOMPARE(p->results()->item(1, 1)->text(), QString("1,792"));  // 448 r (tests/teach/test_demo_cli.cpp)
    QCOMPARE(p->runs()->rowCount(), 3);     // pretraining + two fine-tunings
    QCOMPARE(p->chartSeries(1), 2);         // a fine-tuning loss curve per variant
    window_->tabs()->setCurrentWidget(tab);
    tab->pages()->setCurrentWidget(p);
    screenshot(window_.get(), "learn-exercise-2");
    qunsetenv("PARAPLAN_BIN");
  }

  // A curve of values that cannot be negative keeps its axis at 0: a loss of 0.1 to 2.2 nats had an axis
  // from -1 (the 5 % padding took it below 0, and the nice numbers to -1). A curve with a negative value
  // keeps its padding below.
  void aNonNegativeCurvesAxisStartsAtZero() {
    paraplan::teach::Chart c;
    c.series.push_back({"loss", {1, 2, 3}, {2.2, 0.5, 0.1}});
    std::unique_ptr<QChart> chart(paraplan::plot::make_chart(c));
    auto* y = qobject_cast<QValueAxis*>(chart->axes(Qt::Vertical).value(0));
    QVERIFY(y);
    QCOMPARE(y->min(), 0.0);
    QVERIFY(y->max() >= 2.2);
    c.series[0].y = {2.2, 0.5, -0.1};
    chart.reset(paraplan::plot::make_chart(c));
    y = qobject_cast<QValueAxis*>(chart->axes(Qt::Vertical).value(0));
    QVERIFY(y);
    QVERIFY(y->min() < -0.1);
  }

  // Long category names put bars across, with their values beside them (a trainable share of 0.47 % of
  // a 0-100 % axis is too short a bar to hold its label) and room past the longest bar for its label.
  void aHorizontalBarsValueStandsBesideIt() {
    paraplan::teach::Chart c;
    c.kind = paraplan::teach::Chart::Kind::bars;
    c.categories = {"full FT", "LoRA r=4"};
    c.series.push_back({"trainable share", {}, {100, 0.47}});
    std::unique_ptr<QChart> chart(paraplan::plot::make_chart(c));
    auto* bars = qobject_cast<QHorizontalBarSeries*>(chart->series().value(0));
    QVERIFY(bars);
    QCOMPARE(bars->labelsPosition(), QAbstractBarSeries::LabelsOutsideEnd);
    QVERIFY(bars->barSets().value(0)->labelColor().lightness() < 128);  // dark on the white plot, not the theme's white
    auto* x = qobject_cast<QValueAxis*>(chart->axes(Qt::Horizontal).value(0));
    QVERIFY(x);
    QCOMPARE(x->min(), 0.0);
    QVERIFY(x->max() > 100);
    QCOMPARE(x->tickInterval(), 50.0);  // ticks 0, 50, 100
  }

  // The Runs tab on a store of real runs (not a fixture): `paraplan demo ddp-lenet` at 1 and 2 workers
  // and `paraplan run` of the chapter's recipe on tiny-llama, for the docs' screenshot.
  void runsTabShowsRealRuns() {
    if (!QFile::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
      QSKIP("the Debian package dataset-fashion-mnist is not installed");
    QTemporaryDir dir;
    const QString db = dir.filePath("runs.sqlite");
    QProcess demo;
    demo.start(PARAPLAN_BIN, {"demo", "ddp-lenet", "--workers", "1,2", "--epochs", "1", "--train-samples", "1280",
                              "--db", db});
    QVERIFY(demo.waitForFinished(120000));
    QCOMPARE(demo.exitCode(), 0);
    QProcess run;
    run.start(PARAPLAN_BIN, {"run", QString(PARAPLAN_SOURCE_DIR) + "/data/examples/hf-recipe-llama3-8b.json", "--set",
                             "model=tiny-llama", "--set", "cluster.gpu=cpu", "--set", "training.seq_len=32", "--set",
                             "training.precision=fp32", "--set", "training.lora.base=fp32", "--set",
                             "training.recompute=none", "--steps", "4", "--db", db});
    QVERIFY(run.waitForFinished(120000));
    QCOMPARE(run.exitCode(), 0);
    RunsTab* tab = window_->runsTab();
    window_->tabs()->setCurrentWidget(tab);
    tab->openStore(db);
    QCOMPARE(tab->runCount(), 3);
    tab->table()->selectRow(2);
    QApplication::processEvents();
    screenshot(window_.get(), "runs-tab-real");
  }

  // The picture for the README: LLaMA-3.1-405B on 16,384 H100s over 16 interleaved pipeline stages.
  void screenshotOfAPipelinedPlan() {
    window_->session()->setPlan(plan_of(R"({"model": "llama3-405b", "training": {"seq_len": 8192,
        "global_batch": 2048, "recompute": "full"}, "parallel": {"dp": 128, "tp": 8, "pp": 16,
        "sequence_parallel": true, "pp_schedule": "interleaved", "virtual_stages": 2, "zero": 1},
        "cluster": {"gpu": "h100-sxm-80gb", "gpus": 16384}})"));
    QVERIFY(window_->session()->evaluation().memory.fits);
    QCOMPARE(window_->memoryView()->stageCount(), 16);
    screenshot(window_.get(), "plan-tab-405b");
  }

  // The inputs panel scrolls vertically only, so every control must fit its width: at the window size
  // of the screenshots the panel's vertical scroll bar had pushed the right edge of the spin boxes and
  // lists (their arrows) out of view.
  void everyInputIsWhollyVisibleAcrossThePanel() {
    auto* dock = window_->findChild<QDockWidget*>();
    QVERIFY(dock);
    auto* scroll = qobject_cast<QScrollArea*>(dock->widget());
    QVERIFY(scroll);
    QApplication::processEvents();
    QWidget* viewport = scroll->viewport();
    int checked = 0;
    for (QWidget* w : scroll->widget()->findChildren<QWidget*>()) {
      if (!w->isVisibleTo(scroll->widget()) ||
          !(qobject_cast<QAbstractSpinBox*>(w) || qobject_cast<QComboBox*>(w) || qobject_cast<QPushButton*>(w)))
        continue;
      const int right = w->mapTo(viewport, QPoint(w->width(), 0)).x();
      QVERIFY2(right <= viewport->width(),
               qPrintable(QString("%1 ends at x = %2 of a %3-pixel-wide panel")
                              .arg(w->objectName().isEmpty() ? w->metaObject()->className() : w->objectName())
                              .arg(right)
                              .arg(viewport->width())));
      ++checked;
    }
    QVERIFY(checked > 20);
  }

  // The timeline tab simulates the current plan off the GUI thread: a row per rank and stream, memory
  // over time per stage, and a Perfetto trace that parses.
  void timelineSimulatesThePlan() {
    window_->session()->setPlan(plan_of(R"({"model": "llama3-8b", "training": {"seq_len": 4096,
        "global_batch": 64, "recompute": "selective"}, "parallel": {"dp": 2, "tp": 1, "pp": 4, "zero": 1,
        "pp_schedule": "interleaved", "virtual_stages": 2}, "cluster": {"gpus": 8}})"));
    TimelineTab* tab = window_->timelineTab();
    QSignalSpy done(tab, &TimelineTab::simulated);
    window_->tabs()->setCurrentWidget(tab);  // becoming visible starts the simulation
    QVERIFY(done.wait(60000));
    QVERIFY(tab->result());
    QCOMPARE(static_cast<int>(tab->result()->stages.size()), 4);
    QVERIFY(tab->gantt()->rows() >= 4);  // at least the compute stream of every stage
    QCOMPARE(tab->chartView()->chart()->series().size(), 4);
    // 8B over 4 stages fits an 80 GB H100: the summary says so and names the stage that peaks highest.
    int worst = 0;
    for (const auto& st : tab->result()->stages)
      if (st.peak_bytes > tab->result()->stages[static_cast<size_t>(worst)].peak_bytes) worst = st.stage;
    QVERIFY2(tab->summary()->text().contains(QString("Fits</b>: stage %1 peaks at").arg(worst)),
             qPrintable(tab->summary()->text()));
    QTemporaryDir dir;
    QVERIFY(tab->exportTrace(dir.filePath("trace.json")));
    QFile f(dir.filePath("trace.json"));
    QVERIFY(f.open(QIODevice::ReadOnly));
    const auto trace = nlohmann::json::parse(f.readAll().toStdString());
    QVERIFY(trace.contains("traceEvents"));
    QVERIFY(trace["traceEvents"].size() > 100);
    screenshot(window_.get(), "timeline-tab");
  }

  // Plans round-trip through files, and charts export as PNG and SVG.
  void saveOpenAndExport() {
    QTemporaryDir dir;
    window_->session()->update([](planner::Plan& p) { p.parallel.zero = 3; });
    QVERIFY(window_->savePlan(dir.filePath("p.json")));
    window_->session()->update([](planner::Plan& p) { p.parallel.zero = 0; });
    QVERIFY(window_->openPlan(dir.filePath("p.json")));
    QCOMPARE(window_->session()->plan().parallel.zero, 3);
    QVERIFY(window_->exportChart(dir.filePath("c.png")));
    QVERIFY(window_->exportChart(dir.filePath("c.svg")));
    QVERIFY(QFile(dir.filePath("c.png")).size() > 1000);
    QFile svg(dir.filePath("c.svg"));
    QVERIFY(svg.open(QIODevice::ReadOnly));
    QVERIFY(svg.readAll().contains("<svg"));
  }

 private:
  std::unique_ptr<MainWindow> window_;
};

QTEST_MAIN(GuiTest)
#include "test_gui.moc"

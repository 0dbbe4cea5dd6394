// paraplan import, calibrate and --calibration end to end (issue 13): published rows imported once, a
// bad cell named and nothing stored, a fitted profile written as a file that plan and validate take,
// and an empty store refused with the reason.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "paraplan/held_out.hpp"
#include "paraplan/store.hpp"
#include "paraplan/validation.hpp"
#include "run_paraplan.hpp"
#include "../test_dirs.hpp"

namespace fs = std::filesystem;
using clitest::run;
using nlohmann::json;

namespace {

fs::path fresh_dir(const std::string& name) { return paraplan::testing::fresh_dir("paraplan-cal-cli", name); }

// `paraplan import` into a fresh store <dir>/runs.sqlite of the CSV file `csv_name`: the published-data
// header, then `rows`.
struct Import {
  std::string db;
  clitest::Result r;
};
Import import_rows(const std::string& dir, const std::string& csv_name, const std::string& rows) {
  const std::string db = (fresh_dir(dir) / "runs.sqlite").string();
  const std::string csv =
      clitest::write_temp(csv_name, "source,model,seq,gpu,gpus,tp,pp,dp,global_batch,published_step_s\n" + rows);
  return {db, run("import " + csv + " --db " + db)};
}

std::string published_csv() { return std::string(PARAPLAN_SOURCE_DIR) + "/data/validation/published-step-time.csv"; }

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

// The 18 published rows become 18 imported runs; importing again adds none.
TEST(CliCalibrate, ImportAddsEachPublishedRowOnce) {
  const fs::path dir = fresh_dir("import");
  const std::string db = (dir / "runs.sqlite").string();
  auto r = run("import " + published_csv() + " --db " + db);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("imported 18 row(s)"), std::string::npos) << r.out;
  r = run("import " + published_csv() + " --db " + db);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("imported 0 row(s)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(18 already there)"), std::string::npos) << r.out;
  paraplan::planner::Store store(db);
  const auto runs = store.runs();
  ASSERT_EQ(runs.size(), 18u);
  // Korthikanti et al. 2022 Table 5, first row (gpt-22b, full recompute): 1.42 s as published.
  bool found = false;
  for (const auto& run : runs)
    if (run.source == "published-step-time.csv:13 (korthikanti22-t5)") {
      found = true;
      EXPECT_EQ(run.origin, "imported");
      EXPECT_DOUBLE_EQ(*run.measured_step_s, 1.42);
    }
  EXPECT_TRUE(found);
}

// Issue 13: a CSV with a bad field names the line and the column, and stores nothing.
TEST(CliCalibrate, ImportOfABadRowNamesItAndStoresNothing) {
  const auto [db, r] = import_rows("bad-import", "paraplan-bad-import.csv",
                                   "paper-a,gpt-22b,2048,a100-80gb,8,8,1,1,4,1.42\n"
                                   "paper-a,gpt-22b,2048,a100-80gb,8,8,1,1,4,fast\n"
                                   "paper-a,gpt-22b,2048,a100-80gb,8,8,1,1,,1.5\n");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("paraplan-bad-import.csv:3: published_step_s = fast: must be a number > 0"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("paraplan-bad-import.csv:4: global_batch: is required"), std::string::npos) << r.out;
  // Nothing half-written: the first, good row is not in the store either.
  if (fs::exists(db)) EXPECT_TRUE(paraplan::planner::Store(db).runs().empty());
}

// Issue 13: rows whose plan breaks a rule or names an unknown preset: each rule named with the file's line,
// the field and its value; no store is created.
TEST(CliCalibrate, ImportOfRowsThatBreakPlanRulesNamesEachRuleAndCreatesNoStore) {
  const auto [db, r] = import_rows("bad-plan-import", "paraplan-bad-plan.csv",
                                   "paper-a,gpt-22b,2048,a100-80gb,8,8,1,1,4,1.42\n"
                                   "paper-a,gpt-22b,2048,a100-80gb,8,5,1,1,4,1.5\n"
                                   "paper-a,gpt-22b,2048,a100-99gb,8,8,1,1,4,1.5\n");
  EXPECT_EQ(r.code, 2) << r.out;
  // gpt-22b: 64 heads (Korthikanti et al. 2022 Table 3), so tp = 5 divides nothing.
  EXPECT_NE(r.out.find("paraplan-bad-plan.csv:3: parallel.tp = 5: must divide model.heads (64)"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("paraplan-bad-plan.csv:4: gpu = \"a100-99gb\": is not a preset"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(db)) << "a store was created for rows that were all refused";
}

// Issue 13: a store with no usable rows is refused with the reason; a store that does not exist too.
TEST(CliCalibrate, NothingToFitIsRefusedWithTheReason) {
  const fs::path dir = fresh_dir("empty");
  const std::string db = (dir / "runs.sqlite").string();
  auto r = run("calibrate --db " + db);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--db = " + db + ": no such run store"), std::string::npos) << r.out;
  {
    // A store whose one run failed: nothing a fit can use, and the message says why.
    paraplan::planner::Store store(db);
    paraplan::planner::NewRun nr;
    nr.plan_json = R"({"model":"tiny-llama","training":{"precision":"fp32"},"cluster":{"gpu":"cpu","gpus":2}})";
    nr.world_size = 2;
    store.fail_run(store.create_run(nr), "rank 1: killed by signal 9");
  }
  r = run("calibrate --db " + db + " --out " + (dir / "p.json").string() + " --report");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--db: holds no usable measurement"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("run 1: failed (rank 1: killed by signal 9)"), std::string::npos) << r.out;
  // Nothing half-written: no profile file, no report, no calibration in the store.
  EXPECT_FALSE(fs::exists(dir / "p.json"));
  EXPECT_FALSE(fs::exists(dir / "p-report.json"));
  EXPECT_TRUE(paraplan::planner::Store(db).calibrations().empty());
  r = run("calibrate --db " + db + " --use runs,gpus");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--use = \"gpus\": must be a comma-separated list of runs, probes, imported"), std::string::npos)
      << r.out;
  r = run("calibrate --db " + db + " --repeats some");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--repeats: some not in {all,fastest}"), std::string::npos) << r.out;
}

// Imported rows fitted into a profile file that `validate` and `plan` take with --calibration and name,
// with each parameter's source.
TEST(CliCalibrate, AFittedProfileIsAFileThatPredictionsName) {
  const fs::path dir = fresh_dir("fit");
  const std::string db = (dir / "runs.sqlite").string();
  ASSERT_EQ(run("import " + published_csv() + " --db " + db).code, 0);
  const fs::path profile = dir / "a100-fit.json";
  auto r = run("calibrate --db " + db + " --use imported --name a100-fit --report --out " + profile.string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("calibrated a100-80gb from"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("held out (5-fold)"), std::string::npos) << r.out;
  const json doc = json::parse(read(profile));
  EXPECT_EQ(doc["name"], "a100-fit");
  EXPECT_EQ(doc["device"], "a100-80gb");
  EXPECT_EQ(doc["fit"]["rows"].size(), 18u);
  EXPECT_EQ(doc["cross_validation"]["folds"], 5);
  EXPECT_EQ(doc["parameters"]["gemm"]["source"], "fitted");
  EXPECT_FALSE(doc["parameters"].contains("attention"));  // no row runs FlashAttention: datasheet
  const json report = json::parse(read(dir / "a100-fit-report.json"));
  EXPECT_EQ(report["rows"].size(), 18u);
  EXPECT_TRUE(fs::exists(dir / "a100-fit-report.csv"));
  EXPECT_EQ(paraplan::planner::Store(db).calibrations().size(), 1u);

  r = run("validate --calibration " + profile.string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("under calibration \"a100-fit\" (" + profile.string() + ")"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("attention"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("note: fitted on"), std::string::npos) << r.out;  // A100 rows under an A100 profile
  EXPECT_EQ(r.out.find("is built in: --calibration"), std::string::npos) << r.out;
  r = run("plan " + std::string(PARAPLAN_SOURCE_DIR) + "/data/examples/llama3-8b.json --calibration " + profile.string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("calibration \"a100-fit\""), std::string::npos) << r.out;
  // The example runs on H100s: the profile says which GPU it was fitted on.
  EXPECT_NE(r.out.find("note: fitted on a100-80gb rows, not h100-sxm-80gb"), std::string::npos) << r.out;
  // ... and names the built-in profile of the H100's own rows (data/calibration/mbridge-h100.json, device
  // h100-sxm-80gb), with the option that selects it.
  EXPECT_NE(r.out.find("a profile fitted on h100-sxm-80gb rows is built in: --calibration mbridge-h100"),
            std::string::npos) << r.out;
  // gemm comes from the fit, attention from the H100's datasheet (the profile does not set it).
  const auto gemm = r.out.find("  gemm "), attention = r.out.find("  attention ");
  ASSERT_NE(gemm, std::string::npos);
  ASSERT_NE(attention, std::string::npos);
  EXPECT_NE(r.out.substr(gemm, r.out.find('\n', gemm) - gemm).find("fitted"), std::string::npos) << r.out;
  EXPECT_NE(r.out.substr(attention, r.out.find('\n', attention) - attention).find("datasheet"), std::string::npos)
      << r.out;
  r = run("plan " + std::string(PARAPLAN_SOURCE_DIR) + "/data/examples/llama3-8b.json --calibration nonesuch");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("cluster.calibration = \"nonesuch\": is not a calibration"), std::string::npos) << r.out;
}

// Issue 13: calibrate --report on a profile: every row of the store before and after, the executor run's
// memory by category (measured against the prediction stored with it), the summary, and the report's
// files, the plot a PNG when the GUI library was built.
TEST(CliCalibrate, ReportShowsEveryRowItsMemoryAndAPlot) {
  using namespace paraplan::planner;
  const fs::path dir = fresh_dir("report");
  const std::string db = (dir / "runs.sqlite").string();
  {
    Store s(db);
    NewRun nr;
    nr.name = "tiny on one worker";
    nr.plan_json = R"({"model":"tiny-llama","training":{"seq_len":32,"micro_batch":2,"global_batch":2,"precision":"fp32"},)"
                   R"("parallel":{"dp":1},"cluster":{"gpu":"cpu","gpus":1}})";
    nr.world_size = 1;
    nr.steps = 3;
    const int64_t id = s.create_run(nr);
    s.set_running(id);
    for (int step = 1; step <= 3; ++step) s.add_step({id, 0, step, 5.0, 0.004, 0, 16000});  // 4 ms a step
    // 1 MiB of weights as predicted; 2 MiB of activations measured against 1.5 MiB predicted: -25.0 %.
    s.add_memory({{id, 0, "weights", 1048576.0, 1048576.0}, {id, 0, "activations", 1572864.0, 2097152.0}});
    s.finish_run(id);
    const int64_t again = s.create_run(nr);  // a slower repeat, which --repeats fastest skips and lists
    s.set_running(again);
    for (int step = 1; step <= 3; ++step) s.add_step({again, 0, step, 5.0, 0.006, 0, 16000});
    s.finish_run(again);
  }
  const fs::path profile = dir / "same.json";
  std::ofstream(profile) << R"({"name": "same", "parameters": {}})";  // sets nothing: after = before
  const auto r = run("calibrate --db " + db + " --report --repeats fastest --calibration " + profile.string() +
                     " --out " + (dir / "same.json").string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("profile \"same\" on 1 rows of cpu from " + db + ", 1 skipped"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  skipped run 2: a repeat of run 1's plan on the same machine and build, 6.00 ms a step "
                       "against 4.00 ms: the fastest repeat is kept"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("tiny on one worker"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("4 ms"), std::string::npos) << r.out;  // the measured step, the median of steps 2 and 3
  EXPECT_NE(r.out.find("memory, worst rank (MiB = 2^20 bytes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("activations         2.000 MiB        1.500 MiB   -25.0%"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("weights             1.000 MiB        1.000 MiB    +0.0%"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("mean / median / max |error| 12.5% / 12.5% / 25.0%"), std::string::npos) << r.out;
  const json report = json::parse(read(dir / "same-report.json"));
  ASSERT_EQ(report["rows"].size(), 1u);
  EXPECT_EQ(report["rows"][0]["measured_s"], 0.004);
  EXPECT_EQ(report["rows"][0]["after_s"], report["rows"][0]["before_s"]);  // a profile that sets nothing
  EXPECT_NE(read(dir / "same-report.csv").find("run 1,runs,step,tiny on one worker,0.004,"), std::string::npos);
#ifdef PARAPLAN_HAVE_PLOT
  EXPECT_NE(r.out.find("plot written to " + (dir / "same-report.png").string()), std::string::npos) << r.out;
  EXPECT_EQ(read(dir / "same-report.png").substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
#else
  EXPECT_NE(r.out.find("no plot written to " + (dir / "same-report.png").string() +
                       ": this paraplan was built without the GUI library"),
            std::string::npos)
      << r.out;
#endif
}

// Executor runs that timed their optimizer step give a "runs optimizer" row each: shown, and left out of
// the default fit, which says how to fit them; --fit naming optimizer_memory fits them. A probe's GEMM
// beside these CPU runs is shown and not fitted either (fit.hpp RowsUsed), and the profile's rows say so.
TEST(CliCalibrate, OptimizerRowsAreShownAndFittedWhenNamed) {
  using namespace paraplan::planner;
  const fs::path dir = fresh_dir("optimizer");
  const std::string db = (dir / "runs.sqlite").string();
  {
    Store s(db);
    for (int layers : {2, 4, 8}) {
      NewRun nr;
      nr.name = "tiny x" + std::to_string(layers);
      nr.plan_json = R"({"model":{"name":"m","layers":)" + std::to_string(layers) +
                     R"(,"hidden":256,"heads":8,"kv_heads":4,"head_dim":32,"ffn_hidden":704,"vocab":256},)"
                     R"("training":{"seq_len":64,"micro_batch":2,"global_batch":2,"precision":"fp32"},)"
                     R"("parallel":{"dp":1},"cluster":{"gpu":"cpu","gpus":1}})";
      nr.world_size = 1;
      nr.steps = 3;
      const int64_t id = s.create_run(nr);
      s.set_running(id);
      const double step = 0.002 * layers, optimizer = 0.0001 * layers;
      for (int k = 1; k <= 3; ++k) {
        s.add_step({id, 0, k, 5.0, step, 0, 16000});
        s.add_op_times({{id, 0, k, "gemm", step - optimizer, 10}, {id, 0, k, "optimizer", optimizer, 1}});
      }
      s.finish_run(id);
    }
    ProbeRecord probe;
    probe.device = "cpu";
    s.add_probe(probe, {{"gemm", "fp32", 256, 256, 256, 0, 1, 2.5e-4, 20}});
  }
  auto r = run("calibrate --db " + db + " --name d --out " + (dir / "d.json").string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("runs optimizer     3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("runs optimizer: the runs' optimizer steps, shown and not fitted"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("probes: the probe's GEMMs are shown and not fitted beside executor runs"), std::string::npos)
      << r.out;
  const json d = json::parse(read(dir / "d.json"));
  EXPECT_FALSE(d["parameters"].contains("optimizer_memory"));
  int unfitted_gemms = 0;
  for (const json& row : d["fit"]["rows"]) unfitted_gemms += row["what"] == "gemm" && !row["fitted"].get<bool>();
  EXPECT_EQ(unfitted_gemms, 1);
  r = run("calibrate --db " + db + " --fit gemm,optimizer_memory --name n --out " + (dir / "n.json").string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.find("runs optimizer: the runs' optimizer steps, shown and not fitted"), std::string::npos) << r.out;
  EXPECT_EQ(json::parse(read(dir / "n.json"))["parameters"]["optimizer_memory"]["source"], "fitted");
}

// Issue 14: Megatron-Bridge's table imports (its own column line), and `calibrate --fit gemm --folds 6`
// fits that one parameter on the six H100 rows, each fold one row (leave-one-out); a name that is no
// parameter is refused with the list. `validate --held-out` with one source holds out row by row.
TEST(CliCalibrate, MegatronBridgeRowsFitOneParameterLeavingOneOut) {
  const fs::path dir = fresh_dir("mbridge");
  const std::string db = (dir / "runs.sqlite").string();
  auto r = run("import " + std::string(PARAPLAN_SOURCE_DIR) + "/data/validation/megatron-bridge-25.11.csv --db " + db);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("imported 15 row(s)"), std::string::npos) << r.out;  // 6 H100, 5 B200, 4 GB200
  const fs::path profile = dir / "h100.json";
  r = run("calibrate --db " + db + " --use imported --gpu h100-sxm-80gb --fit gemm --folds 6 --name h100 --out " +
          profile.string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("held out (6-fold)"), std::string::npos) << r.out;
  const json doc = json::parse(read(profile));
  EXPECT_EQ(doc["fit"]["rows"].size(), 6u);
  EXPECT_EQ(doc["cross_validation"]["folds"], 6);
  EXPECT_EQ(doc["parameters"].size(), 1u) << doc["parameters"].dump();
  EXPECT_EQ(doc["parameters"]["gemm"]["source"], "fitted");
  // A parameter the rows cannot move is named, not silently kept: these rows' kernels outlast a host cost of
  // 10 us a launch (the model's host time stays under the device time), so host_overhead_s moves none.
  r = run("calibrate --db " + db + " --use imported --gpu h100-sxm-80gb --fit gemm,host_overhead_s --folds 2 "
          "--name h --out " + (dir / "h.json").string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("--fit host_overhead_s: no row's predicted time moves by 0.1 %"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("--fit gemm:"), std::string::npos) << r.out;
  r = run("calibrate --db " + db + " --use imported --gpu h100-sxm-80gb --fit gemm,speed");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--fit = speed: is not a time-model parameter; the parameters are: gemm, attention"),
            std::string::npos)
      << r.out;
  r = run("validate --held-out --source mbridge-h100");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("then once per row left out"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("qwen3-235b-a22b"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("mean |error|: in fit"), std::string::npos) << r.out;
}

namespace {
std::string pct(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f%%", 100 * x);
  return b;
}
// The line of `out` that starts with `head` ("" when none).
std::string line_of(const std::string& out, const std::string& head) {
  const auto at = out.find("\n" + head + " ");
  return at == std::string::npos ? "" : out.substr(at + 1, out.find('\n', at + 1) - at - 1);
}
}  // namespace

// Issue 14: `paraplan validate` tells fit from prediction: below the fit errors, per source the held-out
// error — the papers by leave-one-source-out (as `validate --held-out` and the library compute it), vTrain
// and the H100 rows by their shipped profile's cross-validation (as the profile files record it), the B200
// and GB200 rows in no fit (their profile was fitted on H100 rows).
TEST(CliValidate, EachSourcesHeldOutErrorFollowsItsFitErrors) {
  using namespace paraplan::planner;
  const auto r = run("validate");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto block = r.out.find("held out (prediction errors: rows the fit did not see; the accuracy to quote):");
  ASSERT_NE(block, std::string::npos) << r.out;
  const std::string held = r.out.substr(block);
  for (const SourceHeldOut& h : leave_one_source_out(published_runs(), {"gemm"})) {
    const std::string l = line_of(held, h.source);
    EXPECT_NE(l.find("mean |error| " + pct(h.held_out_mean_abs_error) + ", max " + pct(h.held_out_max_abs_error)),
              std::string::npos) << l;
  }
  for (const auto& [source, profile, how] : {std::tuple{"vtrain-single", "vtrain-a100", "5-fold cross-validation"},
                                              std::tuple{"mbridge-h100", "mbridge-h100", "leave-one-out"}}) {
    const json cv = json::parse(read(fs::path(PARAPLAN_SOURCE_DIR) / "data" / "calibration" /
                                     (std::string(profile) + ".json")))["cross_validation"]["held_out"]["imported"];
    const std::string l = line_of(held, source);
    EXPECT_NE(l.find("mean |error| " + pct(cv["mean_abs_error"].get<double>())), std::string::npos) << l;
    EXPECT_NE(l.find(std::string(how) + " of \"" + profile + "\""), std::string::npos) << l;
  }
  EXPECT_NE(line_of(held, "mbridge-b200").find("in no fit"), std::string::npos) << held;
  EXPECT_NE(line_of(held, "mbridge-gb200").find("in no fit"), std::string::npos) << held;
  EXPECT_NE(line_of(held, "mbridge-h100-26.04").find("in no fit: the errors above are predictions (\"mbridge-h100\", "
                                                     "fitted on an earlier release's rows)"),
            std::string::npos) << held;
  // One paper alone has no other to be predicted by.
  const auto one = run("validate --source narayanan21-t1");
  EXPECT_NE(one.out.find("with both papers' rows: paraplan validate --held-out"), std::string::npos) << one.out;
  // A profile of the user's own: its rows' fit is not these sources', so no held-out block.
  EXPECT_EQ(run("validate --calibration none").out.find("held out (prediction"), std::string::npos);
}

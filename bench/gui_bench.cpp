// GUI latency: from a control change to a repainted window, for LLaMA-3.1-405B on 16,384 H100s with
// 16 pipeline stages (target < 50 ms). Each iteration changes the ZeRO stage through the session (what
// a panel does), which re-runs the planner and updates both charts, then renders the whole window.
// Run: QT_QPA_PLATFORM=offscreen build/bench/bench_gui
#include <benchmark/benchmark.h>

#include <QApplication>
#include <nlohmann/json.hpp>

#include "main_window.hpp"
#include "paraplan/plan_io.hpp"

namespace {

void BM_ChangeToRepaint(benchmark::State& state) {
  paraplan::gui::MainWindow w;
  w.resize(1500, 950);
  w.show();
  w.session()->setPlan(paraplan::planner::plan_from_json(nlohmann::json::parse(R"({"model": "llama3-405b",
      "training": {"seq_len": 8192, "global_batch": 2048, "recompute": "selective"},
      "parallel": {"dp": 128, "tp": 8, "pp": 16, "sequence_parallel": true, "pp_schedule": "interleaved",
                   "virtual_stages": 2, "zero": 1},
      "cluster": {"gpu": "h100-sxm-80gb", "gpus": 16384}})")));
  QApplication::processEvents();
  int zero = 1;
  for (auto _ : state) {
    zero = zero == 1 ? 2 : 1;
    w.session()->update([&](paraplan::planner::Plan& p) { p.parallel.zero = zero; });
    benchmark::DoNotOptimize(w.grab());  // renders every widget, the charts included
  }
  state.SetLabel("llama3-405b, 16 stages: planner + chart update + full window render");
}
BENCHMARK(BM_ChangeToRepaint)->Unit(benchmark::kMillisecond)->Iterations(30);

}  // namespace

int main(int argc, char** argv) {
  if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
  QApplication app(argc, argv);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

#include "paraplan/teach/lora_demo.hpp"

#include <fmt/format.h>

namespace paraplan::teach {

void apply_lora_event(LoraRanksRun& run, const nlohmann::json& e) {
  const std::string kind = e.value("event", "");
  if (kind == "start") {
    run.model = e.value("model", nlohmann::json::object());
    run.params = e.value("params", int64_t{0});
    run.corpus = e.value("corpus", "");
    run.task = e.value("task", "");
  } else if (kind == "phase") {
    run.curves.push_back({e.value("phase", ""), {}, {}, e.value("steps", 0)});
  } else if (kind == "step" && !run.curves.empty()) {
    run.curves.back().step.push_back(e.value("step", 0));
    run.curves.back().loss.push_back(e.value("loss", 0.0));
  } else if (kind == "result") {
    LoraResult r;
    r.phase = e.value("phase", "");
    r.lora_rank = e.value("lora_rank", 0);
    r.trainable = e.value("trainable", int64_t{0});
    r.trainable_planner = e.value("trainable_planner", int64_t{0});
    r.params = e.value("params", int64_t{0});
    r.step_s = e.value("step_s", 0.0);
    r.peak_measured_bytes = e.value("peak_measured_bytes", 0.0);
    r.peak_predicted_bytes = e.value("peak_predicted_bytes", 0.0);
    r.val_loss = e.value("val_loss", 0.0);
    r.correct = e.value("correct", 0);
    r.problems = e.value("problems", 0);
    r.accuracy = e.value("accuracy", 0.0);
    r.samples = e.value("samples", std::vector<std::string>{});
    run.results.push_back(r);
  } else if (kind == "done") {
    run.done = true;
  }
}

namespace {

std::string grouped(int64_t n) {
  std::string s = std::to_string(n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

}  // namespace

TextTable lora_table(const LoraRanksRun& run) {
  TextTable t;
  t.headers = {"variant", "trainable params", "trainable (%)", "planner's count", "time/step (s)",
               "peak measured (MiB)", "peak predicted (MiB)", "val. loss (nats/token)", "task accuracy (%)"};
  const double mib = 1 << 20;
  for (const LoraResult& r : run.results) {
    if (r.phase == "pretrain") continue;
    t.rows.push_back({r.phase, grouped(r.trainable),
                      fmt::format("{:.3f}", 100.0 * static_cast<double>(r.trainable) / static_cast<double>(r.params)),
                      r.trainable == r.trainable_planner ? "equal" : "differs: " + grouped(r.trainable_planner),
                      fmt::format("{:.3f}", r.step_s), fmt::format("{:.2f}", r.peak_measured_bytes / mib),
                      fmt::format("{:.2f}", r.peak_predicted_bytes / mib), fmt::format("{:.4f}", r.val_loss),
                      fmt::format("{:.1f}", 100 * r.accuracy)});
  }
  for (const LoraResult& r : run.results)
    if (r.phase == "pretrain")
      t.notes.push_back(fmt::format("pretrained model before fine-tuning: val. loss {:.4f} nats/token, task accuracy {:.1f}%",
                                    r.val_loss, 100 * r.accuracy));
  t.notes.push_back("MiB = 2^20 B; peak: the counting allocator's peak over the training steps (measured) and the "
                    "planner's prediction for the same plan; time/step: mean over the steps after the first");
  return t;
}

std::vector<Chart> lora_charts(const LoraRanksRun& run) {
  Chart loss{Chart::Kind::lines, "Fine-tuning loss", "optimizer step", "cross-entropy (nats/token)", {}, {}, false};
  for (const LoraPhaseCurve& c : run.curves)
    if (c.phase != "pretrain") loss.series.push_back({c.phase, c.step, c.loss});
  Chart pre{Chart::Kind::lines, "Pretraining loss (fortunes corpus)", "optimizer step", "cross-entropy (nats/token)",
            {}, {}, false};
  for (const LoraPhaseCurve& c : run.curves)
    if (c.phase == "pretrain") pre.series.push_back({c.phase, c.step, c.loss});
  Chart acc{Chart::Kind::bars, "Task accuracy and trainable share", "variant", "percent (%)", {}, {}, false};
  Series a{"task accuracy", {}, {}}, tr{"trainable share", {}, {}};  // short: the legend has a third of the GUI's width
  for (const LoraResult& r : run.results) {
    if (r.phase == "pretrain") continue;
    acc.categories.push_back(r.phase == "full fine-tuning" ? "full FT" : r.phase);  // a bar label, not elided
    a.y.push_back(100 * r.accuracy);
    tr.y.push_back(100.0 * static_cast<double>(r.trainable) / static_cast<double>(r.params));
  }
  acc.series = {a, tr};
  return {pre, loss, acc};
}

}  // namespace paraplan::teach

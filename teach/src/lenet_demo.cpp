#include "paraplan/teach/lenet_demo.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>

namespace paraplan::teach {

void apply_lenet_event(LenetRun& run, const nlohmann::json& e) {
  const std::string kind = e.value("event", "");
  if (kind == "start") {
    run.workers = e.value("workers", 0);
    run.global_batch = e.value("global_batch", int64_t{0});
    run.steps_per_epoch = e.value("steps_per_epoch", int64_t{0});
    run.params = e.value("params", int64_t{0});
    run.epochs = e.value("epochs", 0);
  } else if (kind == "step") {
    run.steps.push_back({e.value("step", 0), e.value("epoch", 0), e.value("loss", 0.0), e.value("step_s", 0.0),
                         e.value("comm_s", 0.0)});
  } else if (kind == "epoch") {
    LenetEpoch r;
    r.epoch = e.value("epoch", 0);
    const auto times = e.value("epoch_s", std::vector<double>{});
    const auto comm = e.value("comm_s", std::vector<double>{});
    r.epoch_s = times.empty() ? 0 : *std::max_element(times.begin(), times.end());
    r.comm_s = comm.empty() ? 0 : std::accumulate(comm.begin(), comm.end(), 0.0) / static_cast<double>(comm.size());
    r.samples = e.value("samples", int64_t{0});
    r.train_loss = e.value("train_loss", 0.0);
    r.test_loss = e.value("test_loss", 0.0);
    r.test_accuracy = e.value("test_accuracy", 0.0);
    run.epoch_results.push_back(r);
  } else if (kind == "done") {
    run.done = true;
  }
}

std::vector<LenetRow> lenet_rows(const std::vector<LenetRun>& runs) {
  std::vector<LenetRow> rows;
  for (const LenetRun& r : runs) {
    if (r.epoch_results.empty()) continue;
    LenetRow row;
    row.workers = r.workers;
    double t = 0, c = 0, n = 0;
    for (const LenetEpoch& e : r.epoch_results) {
      t += e.epoch_s;
      c += e.comm_s;
      n += static_cast<double>(e.samples);
    }
    row.epoch_s = t / static_cast<double>(r.epoch_results.size());
    row.samples_per_s = n / t;
    row.comm_share = c / t;
    row.test_accuracy = r.epoch_results.back().test_accuracy;
    rows.push_back(row);
  }
  const auto one = std::find_if(rows.begin(), rows.end(), [](const LenetRow& r) { return r.workers == 1; });
  if (one != rows.end())
    for (LenetRow& r : rows) r.speedup = one->epoch_s / r.epoch_s;
  return rows;
}

TextTable lenet_table(const std::vector<LenetRun>& runs) {
  TextTable t;
  t.headers = {"workers", "time/epoch (s)", "samples/s", "speed-up (×)", "communication (%)", "test accuracy (%)"};
  const std::vector<LenetRow> rows = lenet_rows(runs);
  for (const LenetRow& r : rows)
    t.rows.push_back({std::to_string(r.workers), fmt::format("{:.2f}", r.epoch_s), fmt::format("{:.0f}", r.samples_per_s),
                      r.speedup > 0 ? fmt::format("{:.2f}", r.speedup) : "—", fmt::format("{:.1f}", 100 * r.comm_share),
                      fmt::format("{:.2f}", 100 * r.test_accuracy)});
  if (rows.size() > 1) {
    const auto [lo, hi] = std::minmax_element(rows.begin(), rows.end(), [](const LenetRow& a, const LenetRow& b) {
      return a.test_accuracy < b.test_accuracy;
    });
    t.notes.push_back(fmt::format("test accuracy spread over worker counts: {:.2f} percentage points ({:.2f}% to {:.2f}%)",
                                  100 * (hi->test_accuracy - lo->test_accuracy), 100 * lo->test_accuracy,
                                  100 * hi->test_accuracy));
  }
  t.notes.push_back(
      "time/epoch: training only (evaluation excluded), slowest worker, mean over epochs; communication: time blocked "
      "in the gradient all-reduce, mean over workers, as a share of the epoch; speed-up over 1 worker");
  return t;
}

}  // namespace paraplan::teach

namespace paraplan::teach {

std::vector<Chart> lenet_charts(const std::vector<LenetRun>& runs) {
  Chart loss{Chart::Kind::lines, "Training loss (global batch)", "optimizer step", "cross-entropy (nats/image)", {}, {}, false};
  Chart acc{Chart::Kind::lines, "Test accuracy after each epoch", "epoch", "test accuracy (%)", {}, {}, false};
  Chart time{Chart::Kind::bars, "Time per epoch", "workers", "seconds per epoch (s)", {}, {}, false};
  Series t{"time per epoch (s)", {}, {}};
  for (const LenetRun& r : runs) {
    const std::string name = std::to_string(r.workers) + (r.workers == 1 ? " worker" : " workers");
    Series l{name, {}, {}}, a{name, {}, {}};
    for (const LenetStep& s : r.steps) {
      l.x.push_back(s.step);
      l.y.push_back(s.loss);
    }
    for (const LenetEpoch& e : r.epoch_results) {
      a.x.push_back(e.epoch);
      a.y.push_back(100 * e.test_accuracy);
    }
    loss.series.push_back(l);
    acc.series.push_back(a);
  }
  for (const LenetRow& row : lenet_rows(runs)) {
    time.categories.push_back(std::to_string(row.workers));
    t.y.push_back(row.epoch_s);
  }
  time.series.push_back(t);
  return {loss, acc, time};
}

}  // namespace paraplan::teach

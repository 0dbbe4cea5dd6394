#pragma once
// The chapter's first exercise (ddp-lenet) as data: what the workers report, one run per worker
// count, and the table of time per epoch, samples/s, speed-up, communication share and test accuracy.
// Shared by `paraplan demo ddp-lenet` and the GUI's Learn tab; no Qt, no LibTorch.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "paraplan/teach/table.hpp"

namespace paraplan::teach {

struct LenetEpoch {
  int epoch = 0;
  double epoch_s = 0;      // training time of the epoch, slowest worker (evaluation not included)
  double comm_s = 0;       // blocked in the gradient all-reduce, mean over workers
  int64_t samples = 0;     // training images of the epoch
  double train_loss = 0;   // mean over the epoch's steps, nats per image
  double test_loss = 0;    // nats per image
  double test_accuracy = 0;  // fraction
};

struct LenetStep {
  int step = 0;  // optimizer step since the start (1-based)
  int epoch = 0;
  double loss = 0;  // the global batch's mean cross-entropy, nats per image
  double step_s = 0, comm_s = 0;
};

struct LenetRun {
  int workers = 0;
  int64_t run_id = 0;
  int64_t global_batch = 0, steps_per_epoch = 0, params = 0;
  int epochs = 0;
  std::vector<LenetStep> steps;
  std::vector<LenetEpoch> epoch_results;
  bool done = false;
};

// Applies one of the worker's JSON events ("start", "step", "epoch", "done") to the run.
void apply_lenet_event(LenetRun& run, const nlohmann::json& event);

struct LenetRow {
  int workers = 0;
  double epoch_s = 0;         // mean over epochs
  double samples_per_s = 0;   // training images per second
  double speedup = 0;         // epoch time of the 1-worker run / this one's (0 when there is no 1-worker run)
  double comm_share = 0;      // communication time / epoch time
  double test_accuracy = 0;   // after the last epoch
};

// One row per run, in the order given; the speed-up is over the run with one worker.
std::vector<LenetRow> lenet_rows(const std::vector<LenetRun>& runs);
TextTable lenet_table(const std::vector<LenetRun>& runs);

}  // namespace paraplan::teach

#include "paraplan/teach/chart.hpp"

namespace paraplan::teach {

// Loss per step (one line per worker count), test accuracy per epoch, and time per epoch with the
// speed-up: what `paraplan demo ddp-lenet --plot` draws and the Learn tab shows live.
std::vector<Chart> lenet_charts(const std::vector<LenetRun>& runs);

}  // namespace paraplan::teach

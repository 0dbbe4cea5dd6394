#pragma once
// What the `paraplan demo` exercises share: the worker binary, the run store row of each run, progress
// lines with an ETA, and the plot (drawn by the GUI's Qt Charts code when it was built).
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "paraplan/store.hpp"
#include "paraplan/teach/chart.hpp"

namespace paraplan::cli {

// paraplan-teach-worker next to this binary (or $PARAPLAN_TEACH_WORKER); throws with how to build it.
std::string teach_worker_path();

// hardware / software / host / git revision of a demo run row.
planner::NewRun demo_run_row(const std::string& name, const std::string& config_json, int world_size, int steps);

// Prints "label: 40% (step 400/1000), ETA 1 min 12 s" at most every `every_s` seconds.
class Progress {
 public:
  explicit Progress(double every_s = 5.0) : every_s_(every_s) {}
  void start();
  void update(const std::string& label, double done, double total, const std::string& detail);

 private:
  double every_s_;
  std::chrono::steady_clock::time_point t0_, last_;
  bool printed_ = false;
};

std::string eta(double seconds);  // "1 min 12 s", "45 s"

// Writes the charts to PNG or SVG (by extension) with the GUI's Qt Charts code, and says where; when
// this paraplan was built without the GUI library, says so instead. Returns false when nothing was written.
bool write_plot(const std::vector<teach::Chart>& charts, const std::string& path);

}  // namespace paraplan::cli

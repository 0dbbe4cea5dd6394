#include "demo_common.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#ifdef PARAPLAN_HAVE_PLOT
#include "paraplan/plot/plot.hpp"
#endif

namespace paraplan::cli {

const char* git_revision();  // git_revision.cpp, written at build time

namespace fs = std::filesystem;

std::string teach_worker_path() {
  if (const char* w = std::getenv("PARAPLAN_TEACH_WORKER")) return w;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec).parent_path() / "paraplan-teach-worker";
  if (!fs::exists(exe))
    throw std::runtime_error(exe.string() +
                             " does not exist: the exercises need the executor (LibTorch; Debian: apt-get install "
                             "libtorch-dev libgloo-dev), then a rebuild; or point PARAPLAN_TEACH_WORKER at the binary");
  return exe.string();
}

planner::NewRun demo_run_row(const std::string& name, const std::string& config_json, int world_size, int steps) {
  planner::NewRun r;
  r.name = name;
  r.plan_json = config_json;
  r.world_size = world_size;
  r.steps = steps;
  std::string cpu = "unknown", line;
  std::ifstream in("/proc/cpuinfo");
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  double load = -1;
  std::ifstream("/proc/loadavg") >> load;
  r.hardware = nlohmann::json{{"gpu", "cpu"},
                              {"cpu_model", cpu},
                              {"cpu_threads", std::thread::hardware_concurrency()},
                              {"load_average_1min_at_start", load}}
                   .dump();
  r.software = nlohmann::json{{"paraplan", "0.1.0"}}.dump();
  r.git_revision = git_revision();
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  r.host = host;
  return r;
}

std::string eta(double s) {
  if (s < 60) return fmt::format("{:.0f} s", s);
  return fmt::format("{} min {:02.0f} s", static_cast<int>(s / 60), s - 60 * static_cast<int>(s / 60));
}

void Progress::start() {
  t0_ = last_ = std::chrono::steady_clock::now();
  printed_ = false;
}

void Progress::update(const std::string& label, double done, double total, const std::string& detail) {
  const auto now = std::chrono::steady_clock::now();
  const double since_last = std::chrono::duration<double>(now - last_).count();
  if (printed_ && since_last < every_s_ && done < total) return;
  const double elapsed = std::chrono::duration<double>(now - t0_).count();
  const double left = done > 0 ? elapsed * (total - done) / done : 0;
  fmt::print("  {}: {:.0f}% ({}){}\n", label, 100 * done / total, detail,
             done < total && done > 0 ? ", ETA " + eta(left) : "");
  std::cout << std::flush;
  last_ = now;
  printed_ = true;
}

bool write_plot(const std::vector<teach::Chart>& charts, const std::string& path) {
#ifdef PARAPLAN_HAVE_PLOT
  plot::write_charts(charts, path);
  fmt::print("plot written to {} (Qt Charts, rendered off-screen)\n", path);
  return true;
#else
  (void)charts;
  fmt::print("no plot written to {}: this paraplan was built without the GUI library (Qt6 Charts draws the plots; "
             "Debian: apt-get install qt6-base-dev qt6-charts-dev qt6-svg-dev libqt6opengl6-dev, then rebuild)\n",
             path);
  return false;
#endif
}

}  // namespace paraplan::cli

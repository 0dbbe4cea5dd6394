// Exports: the Chrome trace is the Trace Event Format's JSON object form that Perfetto opens (metadata
// naming one process per stage and one thread per stream, complete events with ts/dur in microseconds,
// memory counters), and the memory CSV reaches each stage's simulated peak.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "paraplan/plan_io.hpp"
#include "paraplan/sim/trace.hpp"

using namespace paraplan;
using nlohmann::json;

namespace {

sim::SimResult small_run() {
  const planner::Plan p = planner::load_plan(std::string(PARAPLAN_SOURCE_DIR) + "/data/examples/llama3-8b.json",
                                             {"parallel.pp=2", "parallel.dp=2", "parallel.tp=2", "cluster.gpus=8",
                                              "training.global_batch=8", "parallel.zero=1",
                                              "parallel.tp_comm_overlap=true"});
  sim::SimOptions o;
  o.record_memory = true;
  return sim::simulate(p, o);
}

}  // namespace

TEST(Trace, ChromeTraceStructure) {
  const sim::SimResult r = small_run();
  std::stringstream ss;
  sim::write_chrome_trace(ss, r);
  const json j = json::parse(ss.str());
  ASSERT_TRUE(j.contains("traceEvents"));
  ASSERT_TRUE(j["traceEvents"].is_array());
  EXPECT_EQ(j["displayTimeUnit"], "ms");
  int processes = 0, threads = 0, spans = 0;
  std::map<int, double> last_counter_ts;
  std::map<int, double> max_gib;
  for (const json& e : j["traceEvents"]) {
    ASSERT_TRUE(e.contains("ph") && e.contains("pid") && e.contains("name")) << e.dump();
    const std::string ph = e["ph"];
    const int pid = e["pid"];
    ASSERT_GE(pid, 0);
    ASSERT_LT(pid, 2);
    if (ph == "M") {
      processes += e["name"] == "process_name";
      threads += e["name"] == "thread_name";
      if (e["name"] == "thread_name") {
        EXPECT_TRUE(e["args"]["name"].is_string());
      }
    } else if (ph == "X") {
      ++spans;
      ASSERT_TRUE(e["ts"].is_number() && e["dur"].is_number() && e["tid"].is_number()) << e.dump();
      EXPECT_GE(e["ts"].get<double>(), 0);
      EXPECT_GE(e["dur"].get<double>(), 0);
      // Only the ZeRO-1/2 parameter all-gather may run past the step (the next step's forward hides it).
      if (e["name"].get<std::string>().rfind("param all-gather", 0) != 0) {
        EXPECT_LE(e["ts"].get<double>() + e["dur"].get<double>(), r.step_s * 1e6 + 1e-3) << e.dump();
      }
      EXPECT_GE(e["tid"].get<int>(), 0);
      EXPECT_LT(e["tid"].get<int>(), sim::kStreams);
    } else if (ph == "C") {
      const double ts = e["ts"];
      EXPECT_GE(ts, last_counter_ts[pid]);  // counters in time order per process
      last_counter_ts[pid] = ts;
      max_gib[pid] = std::max(max_gib[pid], e["args"]["allocated GiB"].get<double>());
    } else {
      FAIL() << "unexpected phase " << ph;
    }
  }
  EXPECT_EQ(processes, 2);
  EXPECT_EQ(threads, 2 * sim::kStreams);
  EXPECT_EQ(spans, static_cast<int>(r.graph.graph.size() + r.graph.hidden.size()));
  EXPECT_GT(r.graph.hidden.size(), 0u);  // TP collectives under the GEMMs (tp_comm_overlap), drawn on the TP thread
  for (int s = 0; s < 2; ++s) {
    const sim::StageResult& st = r.stages[static_cast<size_t>(s)];
    EXPECT_NEAR(max_gib[s], (st.placed.static_bytes + st.peak_dynamic_bytes) / (1u << 30), 1e-5);
  }
}

TEST(Trace, MemoryCsvReachesThePeak) {
  const sim::SimResult r = small_run();
  std::stringstream ss;
  sim::write_memory_csv(ss, r);
  std::string line;
  std::getline(ss, line);
  EXPECT_EQ(line, "time_s,stage,dynamic_bytes,allocated_bytes,total_bytes");
  std::map<int, double> peak;
  int rows = 0;
  while (std::getline(ss, line)) {
    double t = 0, dyn = 0, alloc = 0, total = 0;
    int stage = -1;
    ASSERT_EQ(std::sscanf(line.c_str(), "%lf,%d,%lf,%lf,%lf", &t, &stage, &dyn, &alloc, &total), 5) << line;
    ASSERT_GE(stage, 0);
    ASSERT_LT(stage, 2);
    EXPECT_GE(dyn, -0.5);
    peak[stage] = std::max(peak[stage], total);
    ++rows;
  }
  EXPECT_GT(rows, 8);
  for (int s = 0; s < 2; ++s) EXPECT_NEAR(peak[s], r.stages[static_cast<size_t>(s)].peak_bytes, 1);
}

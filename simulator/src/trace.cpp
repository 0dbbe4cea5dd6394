// Chrome trace and memory CSV (trace.hpp). Format: Google, "Trace Event Format" (the JSON object form:
// "traceEvents" with complete events "X", metadata "M" for process and thread names, counters "C").
#include "paraplan/sim/trace.hpp"

#include <fmt/format.h>

#include <ostream>

namespace paraplan::sim {

namespace {

constexpr double kUs = 1e6;
constexpr double kGiB = 1024.0 * 1024 * 1024;

const char* category(TaskKind k) {
  switch (k) {
    case TaskKind::forward:
    case TaskKind::backward:
    case TaskKind::weight:
    case TaskKind::optimizer: return "compute";
    case TaskKind::tp_hidden:
    case TaskKind::tp_exposed: return "tp";
    case TaskKind::p2p: return "pp";
    case TaskKind::param_gather:
    case TaskKind::grad_scatter: return "zero3";
    default: return "dp";
  }
}

struct Writer {
  std::ostream& out;
  bool first = true;
  void event(const std::string& body) {
    out << (first ? "\n  " : ",\n  ") << body;
    first = false;
  }
};

std::string span(const Task& t, const std::string& name, double start_s, double dur_s) {
  return fmt::format(R"({{"ph":"X","name":"{}","cat":"{}","pid":{},"tid":{},"ts":{:.3f},"dur":{:.3f},"args":{{"chunk":{},"microbatch":{}}}}})",
                     name, category(t.kind), t.rank, static_cast<int>(t.stream), start_s * kUs, dur_s * kUs, t.chunk,
                     t.microbatch);
}

}  // namespace

void write_chrome_trace(std::ostream& out, const SimResult& r) {
  const Graph& g = r.graph.graph;
  const Timeline& tl = r.timeline;
  out << R"({"displayTimeUnit":"ms","otherData":{"generator":"paraplan simulate","schedule":")"
      << planner::to_string(r.schedule.kind) << R"("},"traceEvents":[)";
  Writer w{out};
  for (const StageResult& st : r.stages) {
    w.event(fmt::format(R"({{"ph":"M","name":"process_name","pid":{},"args":{{"name":"pipeline stage {}"}}}})", st.stage,
                        st.stage));
    w.event(fmt::format(R"({{"ph":"M","name":"process_sort_index","pid":{},"args":{{"sort_index":{}}}}})", st.stage,
                        st.stage));
    for (int s = 0; s < kStreams; ++s) {
      w.event(fmt::format(R"({{"ph":"M","name":"thread_name","pid":{},"tid":{},"args":{{"name":"{}"}}}})", st.stage, s,
                          to_string(static_cast<Stream>(s))));
      w.event(fmt::format(R"({{"ph":"M","name":"thread_sort_index","pid":{},"tid":{},"args":{{"sort_index":{}}}}})",
                          st.stage, s, s));
    }
  }
  for (size_t i = 0; i < g.size(); ++i) {
    const Task& t = g.tasks()[i];
    w.event(span(t, label(t), tl.start_s[i], t.duration_s));
  }
  for (const HiddenComm& h : r.graph.hidden) {
    Task t = g[h.compute];
    t.kind = TaskKind::tp_hidden;
    t.stream = Stream::tp;
    w.event(span(t, label(t), tl.start_s[static_cast<size_t>(h.compute)], h.duration_s));
  }
  for (const StageResult& st : r.stages)
    w.event(fmt::format(R"({{"ph":"C","name":"memory","pid":{},"ts":0,"args":{{"allocated GiB":{:.6f}}}}})", st.stage,
                        st.placed.static_bytes / kGiB));
  for (const MemorySample& m : tl.memory) {
    const StageResult& st = r.stages[static_cast<size_t>(m.rank)];
    w.event(fmt::format(R"({{"ph":"C","name":"memory","pid":{},"ts":{:.3f},"args":{{"allocated GiB":{:.6f}}}}})", m.rank,
                        m.time_s * kUs, (st.placed.static_bytes + m.bytes) / kGiB));
  }
  out << "\n]}\n";
}

void write_memory_csv(std::ostream& out, const SimResult& r) {
  out << "time_s,stage,dynamic_bytes,allocated_bytes,total_bytes\n";
  auto row = [&](double t, const StageResult& st, double dynamic) {
    out << fmt::format("{:.9f},{},{:.0f},{:.0f},{:.0f}\n", t, st.stage, dynamic, st.placed.static_bytes + dynamic,
                       st.total_bytes(dynamic));
  };
  for (const StageResult& st : r.stages) row(0, st, 0);
  for (const MemorySample& m : r.timeline.memory) row(m.time_s, r.stages[static_cast<size_t>(m.rank)], m.bytes);
}

}  // namespace paraplan::sim

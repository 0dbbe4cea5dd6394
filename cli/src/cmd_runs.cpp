// paraplan runs [--db FILE] [--json] [--id N]: the executor's runs, predicted beside measured.
#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "format.hpp"
#include "paraplan/store.hpp"

namespace paraplan::cli {

using namespace planner;
using nlohmann::json;

namespace {

struct RunsOptions {
  std::string db = "runs.sqlite";
  bool json_out = false;
  int64_t id = 0;
};

json optional(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

json parse_or_text(const std::string& s) {
  json j = json::parse(s, nullptr, false);
  return j.is_discarded() ? json(s) : j;
}

json run_json(const Store& store, const RunRecord& r, bool details) {
  json j = {{"id", r.id},
            {"status", to_string(r.status)},
            {"created_at", r.created_at},
            {"finished_at", r.finished_at.empty() ? json(nullptr) : json(r.finished_at)},
            {"name", r.run.name},
            {"plan", parse_or_text(r.run.plan_json)},
            {"world_size", r.run.world_size},
            {"steps", r.run.steps},
            {"hardware", parse_or_text(r.run.hardware)},
            {"software", parse_or_text(r.run.software)},
            {"git_revision", r.run.git_revision},
            {"host", r.run.host},
            {"predicted_peak_bytes", optional(r.run.predicted_peak_bytes)},
            {"measured_peak_bytes", optional(r.measured_peak_bytes)},
            {"predicted_step_s", optional(r.run.predicted_step_s)},
            {"measured_step_s", optional(r.measured_step_s)},
            {"measured_tokens_per_s", optional(r.measured_tokens_per_s)},
            {"measured_comm_s", optional(r.measured_comm_s)},
            {"error", r.error},
            {"origin", r.origin},
            {"source", r.source}};
  if (details) {
    json mem = json::array(), steps = json::array();
    for (const MemoryRecord& m : store.memory(r.id))
      mem.push_back({{"rank", m.rank}, {"category", m.category}, {"predicted_bytes", optional(m.predicted_bytes)},
                     {"measured_bytes", m.measured_bytes}});
    for (const StepRecord& s : store.steps(r.id))
      steps.push_back({{"rank", s.rank}, {"step", s.step}, {"loss", s.loss}, {"step_s", s.step_s}, {"comm_s", s.comm_s},
                       {"tokens_per_s", s.tokens_per_s}});
    j["memory"] = mem;
    j["step_rows"] = steps;
    json ops = json::array();
    for (const OpTimeRecord& t : store.op_times(r.id))
      ops.push_back({{"rank", t.rank}, {"step", t.step}, {"op_class", t.op_class}, {"seconds", t.seconds},
                     {"calls", t.calls}});
    j["op_times"] = ops;
    json metrics = json::array();  // evaluation results (paraplan demo: test accuracy per epoch, ...)
    for (const MetricRecord& m : store.metrics(r.id))
      metrics.push_back({{"name", m.name}, {"step", m.step}, {"value", m.value}, {"unit", m.unit}});
    j["metrics"] = metrics;
  }
  return j;
}

std::string mib_or_dash(const std::optional<double>& b) { return b ? mib(*b) : "-"; }
std::string s_or_dash(const std::optional<double>& s) { return s ? fmt::format("{:.4f}", *s) : "-"; }

void print_table(const std::vector<RunRecord>& runs) {
  fmt::print("{:>4} {:<9} {:<20} {:<30} {:>5} {:>13} {:>13} {:>8} {:>11} {:>11} {:>11}\n", "id", "status", "created (UTC)",
             "name", "ranks", "pred peak MiB", "meas peak MiB", "error", "pred step s", "meas step s", "tokens/s");
  for (const RunRecord& r : runs) {
    const auto& p = r.run.predicted_peak_bytes;
    const auto& m = r.measured_peak_bytes;
    const std::string err = p && m && *p > 0 ? fmt::format("{:+.2f}%", 100 * (*m - *p) / *p) : "-";
    fmt::print("{:>4} {:<9} {:<20} {:<30} {:>5} {:>13} {:>13} {:>8} {:>11} {:>11} {:>11}\n", r.id, to_string(r.status),
               r.created_at, r.run.name.substr(0, 30), r.run.world_size, mib_or_dash(p), mib_or_dash(m), err,
               s_or_dash(r.run.predicted_step_s), s_or_dash(r.measured_step_s),
               r.measured_tokens_per_s ? fmt::format("{:.0f}", *r.measured_tokens_per_s) : "-");
    if (r.status == RunStatus::failed) fmt::print("     error: {}\n", r.error);
    if (r.origin != "executor") fmt::print("     {}: {}\n", r.origin, r.source);
  }
  fmt::print("MiB = 2^20 B; peak: the largest rank's allocated bytes; error: measured vs predicted; step times in s\n");
}

void print_one(const Store& store, const RunRecord& r) {
  fmt::print("run {} ({}), {} — {} rank(s), {} step(s), created {}\n", r.id, to_string(r.status), r.run.name,
             r.run.world_size, r.run.steps, r.created_at);
  if (!r.error.empty()) fmt::print("error: {}\n", r.error);
  fmt::print("{:>5} {:>5} {:>14} {:>10} {:>10} {:>11}\n", "step", "rank", "loss nats/tok", "step s", "comm s", "tokens/s");
  for (const StepRecord& s : store.steps(r.id))
    fmt::print("{:>5} {:>5} {:>14.6f} {:>10.4f} {:>10.4f} {:>11.0f}\n", s.step, s.rank, s.loss, s.step_s, s.comm_s,
               s.tokens_per_s);
  // Where the steps' time went (after the first step), rank by rank: the mean per step of each class.
  std::map<std::pair<int, std::string>, std::pair<double, int>> ops;
  for (const OpTimeRecord& t : store.op_times(r.id))
    if (t.step > 1) {
      auto& v = ops[{t.rank, t.op_class}];
      v.first += t.seconds;
      v.second += 1;
    }
  if (!ops.empty()) {
    fmt::print("{:>5} {:<28} {:>12}   (mean per step after the first)\n", "rank", "time in", "ms per step");
    for (const auto& [k, v] : ops) fmt::print("{:>5} {:<28} {:>12.3f}\n", k.first, k.second, 1e3 * v.first / v.second);
  }
  fmt::print("{:>5} {:<12} {:>14} {:>14} {:>9}\n", "rank", "memory", "predicted MiB", "measured MiB", "error");
  for (const MemoryRecord& m : store.memory(r.id)) {
    const double p = m.predicted_bytes.value_or(0);
    fmt::print("{:>5} {:<12} {:>14} {:>14} {:>9}\n", m.rank, m.category, mib(p), mib(m.measured_bytes),
               p > 0 ? fmt::format("{:+.2f}%", 100 * (m.measured_bytes - p) / p) : "-");
  }
  const std::vector<MetricRecord> metrics = store.metrics(r.id);
  if (!metrics.empty()) fmt::print("{:<26} {:>5} {:>16}  {}\n", "metric", "step", "value", "unit");
  for (const MetricRecord& m : metrics) fmt::print("{:<26} {:>5} {:>16.6g}  {}\n", m.name, m.step, m.value, m.unit);
}

}  // namespace

Command add_runs_command(CLI::App& app) {
  auto [sub, o] = subcommand<RunsOptions>(app, "runs", R"(List the executor's runs from the run store, the planner's prediction beside the measurement:
peak memory per rank (and per category with --id), step time, tokens/s, and why a run failed.
  paraplan runs                 # table of all runs in runs.sqlite
  paraplan runs --id 3          # one run: every step and every memory category per rank
  paraplan runs --json          # [{id, status, plan, predicted_peak_bytes, measured_peak_bytes,
                                #   predicted_step_s, measured_step_s, ...}])");
  sub->add_option("--db", o->db, "run store, a SQLite file (default runs.sqlite)");
  sub->add_flag("--json", o->json_out, "print a JSON list of runs (with --id: one object with steps and memory)");
  sub->add_option("--id", o->id, "show one run in detail");
  return {sub, [o] {
            if (!std::filesystem::exists(o->db)) {
              std::cerr << "paraplan runs: no run store at " << o->db << " (paraplan run --db " << o->db
                        << " creates it)\n";
              return 1;
            }
            Store store(o->db);
            if (o->id) {
              const auto r = store.run(o->id);
              if (!r) {
                std::cerr << "paraplan runs: --id " << o->id << ": no such run in " << o->db << "\n";
                return 2;
              }
              if (o->json_out)
                std::cout << run_json(store, *r, true).dump(2) << "\n";
              else
                print_one(store, *r);
              return 0;
            }
            const std::vector<RunRecord> runs = store.runs();
            if (o->json_out) {
              json all = json::array();
              for (const RunRecord& r : runs) all.push_back(run_json(store, r, false));
              std::cout << all.dump(2) << "\n";
            } else {
              print_table(runs);
            }
            return 0;
          }};
}

}  // namespace paraplan::cli

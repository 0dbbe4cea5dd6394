#pragma once
// What a calibration is fitted to: measured times of three kinds — executor runs (step times of
// `paraplan run`), imported published runs (`paraplan import`) and probes of a device (`paraplan
// probe`) — each with the plan or device it measured, and how the time model predicts it.
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "paraplan/comm.hpp"
#include "paraplan/plan.hpp"
#include "paraplan/store.hpp"

namespace paraplan::planner {

enum class MeasurementKind { run, imported, probe };
const char* to_string(MeasurementKind k);  // "runs", "imported", "probes" (the words of --use)
// "runs,probes,imported" (any order, any subset); a PlanError naming `field` for an unknown word.
std::set<MeasurementKind> parse_measurement_kinds(const std::string& list, const std::string& field = "--use");

struct Measurement {
  MeasurementKind kind = MeasurementKind::run;
  std::string id;      // "run 12", "imported run 14 (published-step-time.csv:3 (narayanan21-t1))", "probe 3 #7"
  std::string what;    // "step" for runs (and from op_times, "compute": the part outside collectives,
                       // "optimizer": the optimizer step's);
                       // the probe's kind (gemm, memory, kernel, all_reduce, ...)
  std::string device;  // hardware preset id (cluster.gpu.id)
  Plan plan;           // the run's plan; for a probe the device (cluster.gpu, training.precision)
  ProbeResult probe;   // probes only
  double measured_s = 0;
  int64_t run_id = 0;  // runs and imported runs: the store's id
  std::string label;   // a short human description: the run's name, or the probe's shape
  std::string calibration;         // the calibration the stored plan named (its prediction before calibrating)
  std::string hardware, software;  // the store's JSON of the machine and the software that measured it
  std::string revision;            // executor runs: the git revision of the build that ran them
};

struct MeasurementSet {
  std::vector<Measurement> rows;
  std::vector<std::string> skipped;  // "run 3: failed", ...: stored rows a fit cannot use, and why
};

// Every usable row of the kinds in `use`. A run counts when it succeeded with at least one step on
// every rank of its plan (a --fake-rank run measures one rank alone and is skipped); its measured step
// is the median over steps (after the first, unless it is the only one) of the slowest rank's step
// time, which an interruption by another process moves less than the mean. An executor run with
// per-op-class timings gives two more rows: what = "compute", its time outside collectives, and
// what = "optimizer", its optimizer step's (both the median over steps of the slowest rank).
MeasurementSet read_measurements(const Store& store, const std::set<MeasurementKind>& use);

// A collective timed over a group that spans nodes (an imported multi-node table: ranks_per_node set, below
// ranks); it is predicted over the nodes' NICs (comm.cpp group_link), not over the link inside one node.
bool spans_nodes(const ProbeResult& r);

// A probe's collective kind ("all_reduce", "all_gather", ...) as the time model's.
CommKind collective_of(const std::string& kind);

// How reports group rows: "runs", "runs compute", "runs optimizer", "imported", "probes".
std::string row_kind(const Measurement& m);
// An executor run's compute or optimizer row: a part of the step row before it (same run_id).
bool is_part_of_step(const Measurement& m);

// Repeated executor runs of one plan on one machine (the same plan, hardware, software and revision) as one:
// the rows of the run with the fastest step row (its step, compute and optimizer rows); each slower repeat goes to
// `skipped`, saying which run was kept. Other work on the machine only ever slows a run, so the fastest
// of the repeats is the nearest to the plan's own time (the rule of Python's timeit, whose documentation
// says the lowest of several repeats is the figure to use: "higher values ... are typically ... caused
// ... by other processes interfering with your timing accuracy"). Rows of other kinds are kept as they
// are; the order of the kept rows is unchanged.
MeasurementSet keep_fastest_repeats(MeasurementSet set);

// The step time of a run's steps as read_measurements takes it (steps of all ranks of one run).
std::optional<double> median_step_seconds(const std::vector<StepRecord>& steps);

// The work of a run's steps outside collectives (op_times minus comm.*), as median_step_seconds takes
// the step: the median over steps of the slowest rank.
std::optional<double> median_compute_seconds(const std::vector<OpTimeRecord>& ops);
// The same for the optimizer step (op class "optimizer", its own time without the collectives it waits on).
std::optional<double> median_optimizer_seconds(const std::vector<OpTimeRecord>& ops);

// A plan that stands for a device in a probe's prediction (`dtype` as training.precision).
Plan device_plan(const std::string& device, const std::string& dtype);

// What the time model predicts for `m`, in seconds, with the calibration `cal` in place of the plan's:
// step time (estimate_time) for runs, its compute + optimizer + bubble for their "compute" rows and its
// optimizer step for their "optimizer" rows; for
// probes a GEMM (gemm_efficiency), one memory-bound kernel (memory_bound_time; "kernel" probes are tiny
// ones), or one collective (collective_time) over local ranks.
double predict(const Measurement& m, const Calibration& cal);
// The same on `plan`, a copy of m.plan that already carries the calibration: the fit keeps one such copy
// per row and reassigns its calibration in place, where copying the plan on every call allocated.
double predict_on(const Plan& plan, const Measurement& m);

}  // namespace paraplan::planner

// paraplan run FILE.json: train the plan with the executor, measure it and log it to the run store.
// This binary does not link LibTorch (it would add ~0.9 s to every paraplan command): it validates the
// plan, records the planner's prediction, and starts dp*tp*pp*cp paraplan-worker processes.
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "commands.hpp"
#include "format.hpp"
#include "launcher.hpp"
#include "paraplan/exec/launch_env.hpp"
#include "paraplan/exec/layout.hpp"
#include "paraplan/exec/prediction.hpp"
#include "paraplan/exec/run_options.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/rank_grid.hpp"
#include "paraplan/store.hpp"

namespace paraplan::cli {

const char* git_revision();  // git_revision.cpp, written at build time (cmake/GitRevision.cmake)

using namespace planner;
namespace fs = std::filesystem;

namespace {

using planner::text::mib_unit;

struct RunOptions {
  std::string file;
  std::string db = "runs.sqlite";
  bool quiet = false;
  exec::RunOptions run;  // what the workers get too
};

std::string worker_path() { return sibling_executable("paraplan-worker", "PARAPLAN_WORKER"); }

std::vector<std::string> worker_args(const RunOptions& o, int64_t run_id) {
  std::vector<std::string> a{"--plan", fs::absolute(o.file).string()};
  if (!o.db.empty()) a.insert(a.end(), {"--db", fs::absolute(o.db).string()});
  if (run_id) a.insert(a.end(), {"--run-id", std::to_string(run_id)});
  const std::vector<std::string> rest = exec::run_option_args(o.run);
  a.insert(a.end(), rest.begin(), rest.end());
  return a;
}

// "dp=2 zero=1", with tp, sp, pp and the schedule when they are used.
std::string layout_name(const Plan& plan) {
  const auto& par = plan.parallel;
  std::string out = fmt::format("dp={} zero={}", par.dp, par.zero);
  if (par.tp > 1) out += fmt::format(" tp={}{}", par.tp, par.sequence_parallel ? "+sp" : "");
  if (par.pp > 1)
    out += fmt::format(" pp={} {}{}", par.pp, to_string(par.pp_schedule),
                       par.virtual_stages > 1 ? fmt::format(" v={}", par.virtual_stages) : "");
  return out;
}

void print_prediction(const Plan& plan, const exec::Prediction& p) {
  fmt::print("{}: {}{} on {} CPU worker(s)/GPU(s) ({}), seq {} x micro-batch {}, global batch {}\n",
             plan.model.name, layout_name(plan),
             plan.training.lora ? fmt::format(", LoRA r={}", plan.training.lora->rank) : "", plan.parallel.gpus(),
             plan.cluster.gpu.name, plan.training.seq_len, plan.training.micro_batch, plan.training.global_batch);
  std::string parts;
  for (const auto& [k, v] : p.bytes)
    if (k != "peak" && v > 0) parts += fmt::format("{}{} {}", parts.empty() ? "" : ", ", k, mib(v));
  fmt::print("predicted per rank: {} allocated ({}; MiB = 2^20 B){}\n", mib_unit(p.peak_bytes), parts,
             p.step_s ? fmt::format(", {}", seconds(*p.step_s)) + " per step" : ", step time: no prediction yet");
}

void print_summary(Store& store, int64_t id) {
  const auto r = store.run(id);
  if (!r) return;
  const auto pct = [](double m, double p) { return p > 0 ? fmt::format("{:+.2f}%", 100 * (m - p) / p) : "n/a"; };
  fmt::print("run {} {}: ", id, to_string(r->status));
  if (r->measured_step_s)
    fmt::print("{} per step (communication {}), {:.0f} tokens/s over all ranks\n", seconds(*r->measured_step_s),
               seconds(r->measured_comm_s.value_or(0)), r->measured_tokens_per_s.value_or(0));
  fmt::print("{:<12} {:>14} {:>14} {:>9}   (rank 0; MiB = 2^20 B)\n", "memory", "predicted MiB", "measured MiB", "error");
  for (const MemoryRecord& m : store.memory(id)) {
    if (m.rank != 0 || (m.measured_bytes == 0 && m.predicted_bytes.value_or(0) == 0)) continue;
    fmt::print("{:<12} {:>14} {:>14} {:>9}\n", m.category, mib(m.predicted_bytes.value_or(0)), mib(m.measured_bytes),
               pct(m.measured_bytes, m.predicted_bytes.value_or(0)));
  }
  fmt::print("stored in {} (paraplan runs --db {})\n", store.path(), store.path());
}

// Pipelined runs: each stage's figures, from the rows of its first rank (tp and dp index 0: the rank
// grid's pp group of rank 0 lists one rank per stage, in stage order).
void print_stages(Store& store, int64_t id, const Plan& plan) {
  if (plan.parallel.pp < 2) return;
  const std::vector<int> ranks = RankGrid(plan).group(Axis::pp, 0);
  std::map<int, std::map<std::string, MemoryRecord>> mem;
  for (const MemoryRecord& m : store.memory(id)) mem[m.rank][m.category] = m;
  std::map<int, std::vector<StepRecord>> steps;
  for (const StepRecord& s : store.steps(id)) steps[s.rank].push_back(s);
  fmt::print("{:<6} {:>5} {:>14} {:>14} {:>16} {:>16} {:>12} {:>12}   (MiB = 2^20 B; steps after the first)\n",
             "stage", "rank", "peak pred MiB", "peak meas MiB", "activ. pred MiB", "activ. meas MiB",
             "step s", "comm s");
  for (size_t st = 0; st < ranks.size(); ++st) {
    const int r = ranks[st];
    double step = 0, comm = 0;
    int n = 0;
    for (const StepRecord& s : steps[r])
      if (s.step > 1 || steps[r].size() == 1) {
        step += s.step_s;
        comm += s.comm_s;
        ++n;
      }
    auto mib = [&](const char* cat, bool predicted) {
      const auto it = mem[r].find(cat);
      if (it == mem[r].end()) return std::string("-");
      return fmt::format("{:.3f}", (predicted ? it->second.predicted_bytes.value_or(0) : it->second.measured_bytes) /
                                       (1 << 20));
    };
    fmt::print("{:<6} {:>5} {:>14} {:>14} {:>16} {:>16} {:>12} {:>12}\n", st, r, mib("peak", true),
               mib("peak", false), mib("activations", true), mib("activations", false),
               n ? fmt::format("{:.4f}", step / n) : "-", n ? fmt::format("{:.4f}", comm / n) : "-");
  }
}

// A plan refused before any worker starts still leaves a failed run in the store (what was asked and
// why not), so that the store and the GUI's runs tab show every attempt.
void record_refused(const RunOptions& o, const PlanError& e) {
  if (o.db.empty()) return;
  if (const auto env = exec::launch_env(); env && env->rank != 0) return;
  std::ifstream in(o.file);
  std::stringstream text;
  text << in.rdbuf();
  NewRun r;
  r.plan_json = text.str();
  r.name = "refused: " + fs::path(o.file).filename().string();
  r.world_size = 0;
  r.steps = o.run.steps;
  r.git_revision = git_revision();
  r.host = host_name();
  Store store(o.db);
  store.fail_run(store.create_run(r), e.what());
}

Plan load_run_plan(const RunOptions& o) {
  try {
    exec::check_run_options(o.run);
    const Plan plan = load_plan(o.file, o.run.overrides);
    Violations v;
    exec::check_executor_support(plan, v);
    v.throw_if_any();
    return plan;
  } catch (const PlanError& e) {
    record_refused(o, e);
    throw;
  }
}

// torchrun / srun give each rank its own launcher. One that fails before its worker starts would leave
// the others waiting out the rendezvous timeout; instead a worker joins the rendezvous only to tell them
// (paraplan-worker --abort), and they stop within a second.
void tell_other_ranks(const RunOptions& o, const std::string& why) {
  const std::string exe = worker_path();
  if (!fs::exists(exe)) return;
  WorkerProcess w{exe, {"--abort", why, "--timeout", std::to_string(o.run.timeout_s)}, {}};
  run_workers({w}, [](int, const std::string& line, bool err) { (err ? std::cerr : std::cout) << line << "\n"; });
}

int run_plan_checked(const RunOptions& o);

int run_plan(const RunOptions& o) {
  if (!exec::launch_env()) return run_plan_checked(o);
  try {
    return run_plan_checked(o);
  } catch (const PlanError& e) {
    std::string why;
    for (const auto& v : e.violations()) why += (why.empty() ? "" : "; ") + v.to_string();
    tell_other_ranks(o, "invalid input: " + why);
    throw;
  } catch (const std::exception& e) {
    tell_other_ranks(o, e.what());
    throw;
  }
}

int run_plan_checked(const RunOptions& o) {
  const Plan plan = load_run_plan(o);
  const int world = plan.parallel.gpus();
  const std::string exe = worker_path();
  if (!fs::exists(exe)) {
    std::cerr << "paraplan run: the executor is not built: " << exe
              << " does not exist.\n  It needs LibTorch (Debian: apt-get install libtorch-dev libgloo-dev), then "
                 "rebuild (scripts/test); or point PARAPLAN_WORKER at a paraplan-worker binary.\n";
    return 3;
  }
  const exec::Prediction pred = exec::predict_run(plan);
  const std::optional<exec::LaunchEnv> env = exec::launch_env();
  std::optional<Store> store;
  if (!o.db.empty()) store.emplace(o.db);
  int64_t run_id = 0;
  const bool creates_row = store && (!env || env->rank == 0);
  if (creates_row) {
    NewRun r;
    r.plan_json = plan_to_json(plan).dump();
    r.name = fmt::format("{} {}{}{}", plan.model.name, layout_name(plan),
                         plan.training.lora ? fmt::format(" lora r={}", plan.training.lora->rank) : "",
                         o.run.fake_rank >= 0 ? fmt::format(" fake rank {}", o.run.fake_rank) : "");
    r.world_size = o.run.fake_rank >= 0 ? 1 : world;
    r.steps = o.run.steps;
    r.hardware = nlohmann::json{{"gpu", plan.cluster.gpu.id},
                                {"gpu_name", plan.cluster.gpu.name},
                                {"cpu_model", cpu_model()},
                                {"cpu_threads", std::thread::hardware_concurrency()}}
                     .dump();
    r.software = nlohmann::json{{"paraplan", "0.1.0"}}.dump();
    r.git_revision = git_revision();
    r.host = host_name();
    r.predicted_peak_bytes = pred.peak_bytes;
    r.predicted_step_s = pred.step_s;
    run_id = store->create_run(r);
  }
  if (env && env->world_size != world) {
    const PlanError e("parallel.dp", std::to_string(plan.parallel.dp),
                      fmt::format("the plan needs dp*tp*pp*cp = {} ranks but the environment says WORLD_SIZE = {}",
                                  world, env->world_size));
    if (store && run_id) store->fail_run(run_id, e.what());
    throw e;
  }
  const int local = o.run.fake_rank >= 0 ? 1 : world;
  RunOptions wo = o;
  if (wo.run.threads == 0) wo.run.threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / local);
  const int threads = wo.run.threads;
  const std::vector<std::string> args = worker_args(wo, run_id);
  const std::vector<std::pair<std::string, std::string>> thread_env = worker_thread_env(threads);

  if (env) {
    // torchrun / srun: this process becomes the worker of this rank.
    WorkerProcess w{exe, args, thread_env};
    const std::string why = exec_worker(w);
    if (store && run_id) store->fail_run(run_id, why);
    std::cerr << "paraplan run: " << why << "\n";
    return 1;
  }
  if (!o.quiet) {
    print_prediction(plan, pred);
    fmt::print("starting {} worker(s), {} thread(s) each{}\n", local, threads,
               store ? fmt::format(", run {} in {}", run_id, o.db) : "");
  }
  std::vector<WorkerProcess> workers;
  const int port = free_local_port();
  for (int r = 0; r < local; ++r) {
    WorkerProcess w{exe, args, thread_env};
    if (o.run.fake_rank < 0) {
      const auto rank_env = local_rank_env(r, world, port);
      w.env.insert(w.env.end(), rank_env.begin(), rank_env.end());
    }
    w.env.emplace_back("PARAPLAN_LAUNCHER_PID", std::to_string(getpid()));  // this launcher records failures
    workers.push_back(std::move(w));
  }
  const LaunchOutcome out = run_workers(workers, [&](int rank, const std::string& line, bool err) {
    if (err)
      std::cerr << line << "\n";
    else if (rank == 0 && !o.quiet)
      std::cout << line << "\n" << std::flush;
  });
  if (!out.ok) {
    // The worker's line is "paraplan-worker: rank R: message"; how it died otherwise.
    const std::string prefix = "paraplan-worker: ";
    const std::string msg = out.error.rfind(prefix, 0) == 0 ? out.error.substr(prefix.size())
                                                             : fmt::format("rank {}: {}", out.failed_rank, out.error);
    if (store && run_id) store->fail_run(run_id, msg);
    std::cerr << "paraplan run: failed: " << msg << "\n"
              << (store ? fmt::format("  run {} is marked failed in {}\n", run_id, o.db) : "");
    return out.exit_code == 2 ? 2 : 1;
  }
  if (store && !o.quiet) {
    print_summary(*store, run_id);
    print_stages(*store, run_id, plan);
  }
  return 0;
}

}  // namespace

Command add_run_command(CLI::App& app) {
  auto [sub, o] = subcommand<RunOptions>(app, "run", R"(Train a plan with the executor and log it: starts dp*tp*pp*cp paraplan-worker processes on this
machine (gloo on CPU workers, NCCL on GPUs), or, when RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT are
set (torchrun, srun), becomes the worker of that rank. Each run is stored with the plan, the
planner's prediction and the measurement (steps, memory per category). Examples:
  paraplan run data/examples/tiny-dp2.json --steps 20
  paraplan run data/examples/tiny-dp2.json --set parallel.zero=3 --data notes.txt --db runs.sqlite
  torchrun --no-python --nproc-per-node 8 paraplan run plan.json    # one process per rank
  paraplan run plan.json --steps 1000 --checkpoint-every 100 --checkpoint-dir ckpt
  paraplan run plan.json --steps 1000 --checkpoint-every 100 --resume ckpt   # after an interruption
The executor runs data parallelism (ZeRO 0-3), tensor and sequence parallelism, pipeline parallelism
(gpipe, 1f1b, interleaved, zb-h1, zbv), recompute, dropout, LoRA and QLoRA; pipelined runs print each
stage's memory and step time. See `paraplan runs` for the results.)");
  add_plan_file(*sub, o->file);
  sub->add_option("--db", o->db, "run store, a SQLite file (default runs.sqlite; \"\" to store nothing)");
  sub->add_flag("--quiet", o->quiet, "print only errors");
  exec::add_run_options(*sub, o->run);
  return {sub, [o] { return run_plan(*o); }};
}

}  // namespace paraplan::cli

// paraplan-worker: one rank of `paraplan run`. Started by the launcher (one process per rank, RANK /
// WORLD_SIZE / MASTER_ADDR / MASTER_PORT set) or by torchrun / srun through `paraplan run`. Trains the
// plan, prints progress on stdout, writes its steps and memory to the run store, and on failure prints
// one error line on stderr, marks the run failed and exits non-zero.
#include <CLI/CLI.hpp>
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <fmt/format.h>
#include <torch/version.h>
#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "paraplan/error.hpp"
#include "device.hpp"
#include "errors.hpp"
#include "peer_watch.hpp"
#include "thread_policy.hpp"
#include "paraplan/exec/communicator.hpp"
#include "paraplan/exec/dataset.hpp"
#include "paraplan/exec/hf_dir.hpp"
#include "paraplan/exec/launch_env.hpp"
#include "paraplan/exec/memory_meter.hpp"
#include "paraplan/exec/prediction.hpp"
#include "paraplan/exec/run_options.hpp"
#include "paraplan/exec/safetensors.hpp"
#include "paraplan/exec/train_checkpoint.hpp"
#include "paraplan/exec/trainer.hpp"
#include "paraplan/format.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/store.hpp"

using namespace paraplan;
using namespace paraplan::exec;

namespace {

struct Args {
  std::string plan_file;
  std::string db;
  int64_t run_id = 0;
  std::string abort;  // --abort: this rank's launcher failed with this message
  RunOptions run;     // shared with `paraplan run` (run_options.hpp)
};

// OpenBLAS keeps its own thread pool beside ATen's; with several ranks per machine both must be limited.
void set_threads(int n) {
  at::set_num_threads(n);
  using SetThreads = void (*)(int);
  if (auto f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(n);
}

std::string software_json(const std::vector<int>& cores) {
  return nlohmann::json{{"paraplan", "0.1.0"},
                        {"libtorch", TORCH_VERSION},
                        {"compiler", __VERSION__},
                        {"threads", at::get_num_threads()},
                        {"rank0_cores", cores}}
      .dump();
}

// A CPU worker keeps to its own slice of the machine's cores (thread_policy.hpp worker_cores: two
// workers that wake each other at every collective otherwise come to share one core). Before any
// thread is started, so that ATen's, OpenBLAS's and gloo's threads keep to it too. PARAPLAN_PIN_CORES=0
// leaves the placement to the operating system. Returns the cores, empty when not pinned.
std::vector<int> pin_cpu_worker(const std::optional<LaunchEnv>& env, int threads) {
  std::string err;
  // Without LOCAL_WORLD_SIZE (a launcher that does not set it) the workers beside this one are unknown.
  const int local_world = !env ? 1 : env->local_world_known ? env->local_world_size : 0;
  const std::vector<int> cores = pin_worker(env ? env->local_rank : 0, local_world, threads, err);
  if (!err.empty())
    std::fprintf(stderr, "paraplan-worker: not pinned to its cores (%s); the operating system places it\n", err.c_str());
  return cores;
}

ModelExtras extras_for(const planner::Plan& plan) {
  if (plan.model.hf_config.empty()) return {};
  std::ifstream in(plan.model.hf_config);
  return extras_from_hf_config(nlohmann::json::parse(in, nullptr, false));
}


using planner::text::mib_unit;

// The checkpoint to start from: --load, else the directory of a plan's hf_config when it holds weights.
std::string load_dir(const Args& a, const planner::Plan& plan) {
  namespace fs = std::filesystem;
  if (!a.run.load.empty()) return a.run.load;
  if (plan.model.hf_config.empty()) return "";
  const fs::path dir = fs::path(plan.model.hf_config).parent_path();
  const bool weights = fs::exists(dir / "model.safetensors") || fs::exists(dir / "model.safetensors.index.json");
  return weights ? dir.string() : "";
}

std::unique_ptr<ProcessGroups> make_groups(const Args& a, const std::optional<LaunchEnv>& env,
                                           const planner::Plan& plan, const planner::RankGrid& grid,
                                           std::function<void(const std::string&)> on_peer_abort) {
  if (a.run.fake_rank >= 0) return make_fake_groups(a.run.fake_rank, grid);
  if (!env) {
    if (grid.world() > 1)
      throw planner::PlanError("parallel.dp", std::to_string(plan.parallel.dp),
                               "the plan needs " + std::to_string(grid.world()) +
                                   " ranks: start it with `paraplan run`, torchrun or srun (RANK and WORLD_SIZE are unset)");
    return make_fake_groups(0, grid);  // a world of one: the fake communicator is exact
  }
  GlooOptions go;
  go.timeout = std::chrono::seconds(a.run.timeout_s);
  go.on_peer_abort = std::move(on_peer_abort);
  if (plan.cluster.gpu.is_cpu || gpu_ranks_over_gloo()) return make_gloo_groups(*env, grid, go);
  // NCCL's point-to-point has no tags: a stage must receive in the order its neighbour sends, which holds
  // when each direction carries one kind of message (one chunk per stage), not for interleaved and zbv.
  if (plan.parallel.virtual_stages > 1)
    throw planner::PlanError("parallel.pp_schedule", to_string(plan.parallel.pp_schedule),
                             "over NCCL the executor runs gpipe, 1f1b and zb-h1 (one model chunk per stage): NCCL "
                             "point-to-point has no message tags; run interleaved or zbv over gloo "
                             "(PARAPLAN_GPU_COMM=gloo) or on CPU workers");
  return make_nccl_groups(*env, grid, go);
}

void report_memory(int rank, const MemoryStats& mem, const Prediction& pred, int64_t run_id,
                   std::optional<planner::Store>& store) {
  std::vector<planner::MemoryRecord> rows;
  for (int c = 0; c < kMemCategories; ++c) {
    const std::string name = to_string(static_cast<MemCategory>(c));
    rows.push_back({run_id, rank, name, pred.bytes_of(name), static_cast<double>(mem.at_peak[static_cast<size_t>(c)])});
  }
  rows.push_back({run_id, rank, "peak", pred.peak_bytes, static_cast<double>(mem.peak)});
  if (store) store->add_memory(rows);
  std::string parts;
  for (size_t i = 0; i + 1 < rows.size(); ++i)
    if (rows[i].measured_bytes != 0 || rows[i].predicted_bytes.value_or(0) != 0)
      parts += fmt::format("{}{} {} / {}", parts.empty() ? "" : ", ", rows[i].category, mib_unit(rows[i].measured_bytes),
                           mib_unit(rows[i].predicted_bytes.value_or(0)));
  std::cout << fmt::format("rank {} memory at peak, measured / predicted: {} / {} ({}; MiB = 2^20 B)\n", rank,
                           mib_unit(static_cast<double>(mem.peak)), mib_unit(pred.peak_bytes), parts)
            << std::flush;
}

// Step rows wait in memory and go to the store about once a second, in one transaction each: written
// every step, a rank's write between steps delayed its next step, and the other ranks measured that
// delay in their first collective (tiny dp=2 ZeRO-1: 4.4-4.6 ms a step, of which 2.0-2.2 ms in
// collectives, against 3.4-3.6 ms and 1.0 ms with no store). One flush a second touches one step of
// many, which the median over steps (measurements.hpp) does not see.
class StepLog {
 public:
  explicit StepLog(planner::Store* store) : store_(store) {}
  void add(int64_t run_id, int rank, const StepStats& s) {
    if (!store_) return;
    steps_.push_back({run_id, rank, s.step, s.loss, s.step_s, s.comm_s, s.tokens_per_s});
    for (const OpTally& t : s.op_times) ops_.push_back({run_id, rank, s.step, t.op_class, t.seconds, t.calls});
    if (std::chrono::steady_clock::now() - last_ >= std::chrono::seconds(1)) flush();
  }
  void flush() {
    if (!store_ || steps_.empty()) return;
    store_->add_steps(steps_);
    store_->add_op_times(ops_);
    steps_.clear();
    ops_.clear();
    last_ = std::chrono::steady_clock::now();
  }

 private:
  planner::Store* store_;
  std::vector<planner::StepRecord> steps_;
  std::vector<planner::OpTimeRecord> ops_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

int run(const Args& a) {
  std::optional<planner::Store> store;
  if (!a.db.empty()) store.emplace(a.db);
  StepLog step_log(store ? &*store : nullptr);
  int64_t run_id = a.run_id;
  const std::optional<LaunchEnv> env = launch_env();
  int rank = env ? env->rank : std::max(a.run.fake_rank, 0);
  std::atomic<int64_t> watched_run{run_id};  // run_id and rank as the peer watch's thread reads them
  std::atomic<int> watched_rank{rank};
  // Under `paraplan run`'s launcher the launcher records the failure: it knows which rank failed first,
  // whereas the other ranks' errors here are only the consequence (a peer closed its connection).
  const bool records_failure = store && !std::getenv("PARAPLAN_LAUNCHER_PID");
  std::unique_ptr<ProcessGroups> groups;
  try {
    check_run_options(a.run);
    const planner::Plan plan = planner::load_plan(a.plan_file, a.run.overrides);
    planner::Violations v;
    check_executor_support(plan, v);
    v.throw_if_any();
    const planner::RankGrid grid(plan);  // parallel degrees placed by cluster.mesh_order
    if (env && env->world_size != grid.world())
      throw planner::PlanError("parallel.dp", std::to_string(plan.parallel.dp),
                               "the plan needs dp*pp*cp*tp = " + std::to_string(grid.world()) +
                                   " ranks but the environment says WORLD_SIZE = " + std::to_string(env->world_size));
    if (a.run.fake_rank >= grid.world())
      throw planner::PlanError("--fake-rank", std::to_string(a.run.fake_rank),
                               "must be below dp*pp*cp*tp = " + std::to_string(grid.world()));
    const int threads = a.run.threads > 0 ? a.run.threads : 1;
    const std::vector<int> cores = plan.cluster.gpu.is_cpu ? pin_cpu_worker(env, threads) : std::vector<int>{};
    set_threads(threads);
    // The peer watch calls this on its own thread, while this one may be writing steps through `store`:
    // one SQLite connection is not for two threads (the watch's BEGIN met the step writer's open
    // transaction, "cannot start a transaction within a transaction", and the uncaught error aborted the
    // rank instead of failing the run: CI, 2026-12-06), so it opens a connection of its own; run id and
    // rank reach it through atomics, as they are set after the watch starts.
    groups = make_groups(a, env, plan, grid, [&](const std::string& why) {
      const int64_t id = watched_run.load();
      if (!records_failure || id == 0) return;
      try {
        planner::Store(a.db).fail_run(id, "rank " + std::to_string(watched_rank.load()) + ": " + why);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "paraplan-worker: the run's failure was not stored: %s\n", e.what());
      }
    });
    rank = groups->rank;
    watched_rank = rank;
    if (store && run_id == 0) run_id = std::stoll(groups->lookup("run_id"));
    watched_run = run_id;
    if (rank == 0 && run_id != 0) groups->publish("run_id", std::to_string(run_id));
    if (store) {
      if (!store->run(run_id)) {
        planner::NewRun r;  // a rank on a node that does not share the launcher's file: the row it joins
        r.plan_json = planner::plan_to_json(plan).dump();
        r.world_size = grid.world();
        r.steps = a.run.steps;
        store->ensure_run(run_id, r);
      }
      if (rank == 0) {
        store->set_running(run_id);
        store->set_software(run_id, software_json(cores));
      }
    }
    TrainOptions o;
    o.plan = plan;
    o.extras = extras_for(plan);
    o.lr = a.run.lr;
    o.weight_decay = a.run.weight_decay;
    o.seed = a.run.seed;
    o.data = a.run.data;
    o.load_dir = load_dir(a, plan);
    o.adapter_dir = a.run.adapter;
    o.local_rank = env ? env->local_rank : 0;
    Trainer trainer(o, *groups);
    if (!a.run.resume.empty()) {
      const int done = trainer.resume(a.run.resume, a.run.steps);
      std::cout << fmt::format("rank {} resumed from {} after step {}\n", rank, resolve_checkpoint(a.run.resume), done)
                << std::flush;
    }
    const std::string checkpoints = checkpoint_root(a.run);
    while (trainer.steps_done() < a.run.steps) {
      const StepStats s = trainer.step();
      std::cout << fmt::format("rank {} step {}/{}: loss {:.6f} nats/token, {:.4f} s/step (communication {:.4f} s), "
                               "{:.0f} tokens/s\n",
                               rank, s.step, a.run.steps, s.loss, s.step_s, s.comm_s, s.tokens_per_s)
                << std::flush;
      step_log.add(run_id, rank, s);
      if (!checkpoints.empty() && s.step % a.run.checkpoint_every == 0) {
        const std::string dir = trainer.write_checkpoint(checkpoints);
        std::cout << fmt::format("rank {} checkpoint of step {} written to {}\n", rank, s.step, dir) << std::flush;
      }
    }
    step_log.flush();
    const MemoryStats mem = trainer.memory();
    if (plan.parallel.pp > 1) {
      // The ops this stage ran (the planner's schedule, as the simulator runs it) and the one during
      // which its memory peaked.
      const std::string& ops = trainer.schedule_log();
      std::cout << fmt::format("rank {} stage {} ops: {}\n", rank, trainer.stage(), ops);
      if (trainer.peak_op() >= 0) {
        std::istringstream words(ops);
        std::string op;
        for (int i = 0; i <= trainer.peak_op(); ++i) words >> op;
        std::cout << fmt::format("rank {} stage {} memory peak during op {} ({})\n", rank, trainer.stage(),
                                 trainer.peak_op(), op);
      }
      std::cout << std::flush;
    }
    if (mem.measured) report_memory(rank, mem, predict_run(plan, trainer.stage()), run_id, store);
    if (!a.run.save.empty()) trainer.save(a.run.save);
    if (!a.run.save_adapter.empty()) trainer.save_adapter(a.run.save_adapter);
    if (!a.run.save_merged.empty()) trainer.save_merged(a.run.save_merged);
    groups->world->barrier();  // every rank's rows are in before rank 0 sums them up
    if (store && rank == 0) store->finish_run(run_id);
    groups->finish();
  } catch (const planner::PlanError&) {
    throw;  // the same on every rank: each says so itself
  } catch (const std::exception& e) {
    try {
      step_log.flush();  // the steps done before the failure
    } catch (const std::exception&) {
    }
    const std::string why = groups ? groups->report_failure(error_message(e)) : "rank " + std::to_string(rank) + ": " + error_message(e);
    if (records_failure && run_id != 0) store->fail_run(run_id, why);
    throw std::runtime_error(why.rfind("rank " + std::to_string(rank) + ": ", 0) == 0
                                 ? why.substr(("rank " + std::to_string(rank) + ": ").size())
                                 : why);
  }
  return 0;
}

// `paraplan-worker --abort MESSAGE`: the launcher of this rank failed before the rank could start
// (torchrun / srun, where each rank has its own launcher). Joins the rendezvous only to tell the other
// ranks, so that they stop within a second instead of waiting out the rendezvous timeout.
int announce(const Args& a) {
  const std::optional<LaunchEnv> env = launch_env();
  if (!env) return 1;  // no peers to tell
  const std::string why = "rank " + std::to_string(env->rank) + "'s launcher failed: " + a.abort;
  announce_abort(*env, why, std::chrono::seconds(std::min(a.run.timeout_s, 30)));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  // Before any tensor exists: every CPU storage is then counted (libtorch-notes.md §2).
  install_counting_allocator();
  CLI::App app{
      "paraplan-worker: one rank of `paraplan run` (start it through `paraplan run`, torchrun or srun).\n"
      "Trains the plan for --steps optimizer steps and writes steps and memory to --db."};
  Args a;
  auto* plan_opt = app.add_option("--plan", a.plan_file, "plan JSON file");
  app.add_option("--abort", a.abort,
                 "tell the other ranks that this rank's launcher failed with this message, then exit 1")
      ->excludes(plan_opt);
  app.add_option("--db", a.db, "run store (SQLite file)");
  app.add_option("--run-id", a.run_id, "run row in --db (0: rank 0 publishes it)");
  add_run_options(app, a.run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  const char* rank = std::getenv("RANK");
  // One line per problem, "paraplan-worker: rank R: ...": the launcher reports the failing rank's last line.
  const std::string who = std::string("paraplan-worker: rank ") + (rank ? rank : "0");
  if (a.abort.empty() && a.plan_file.empty()) {
    std::cerr << who << ": --plan is required\n";
    return 2;
  }
  return run_reporting_errors(who, [&] { return a.abort.empty() ? run(a) : announce(a); });
}

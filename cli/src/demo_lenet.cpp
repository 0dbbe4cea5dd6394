// paraplan demo ddp-lenet: the chapter's first exercise. For each worker count, starts that many
// paraplan-teach-worker processes (gloo, one thread each), reads rank 0's JSON events, stores the run
// (steps, per-epoch metrics) and prints progress; then the table and, with --plot, the plot.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "demo_common.hpp"
#include "demo_options.hpp"
#include "launcher.hpp"
#include "paraplan/error.hpp"
#include "paraplan/store.hpp"
#include "paraplan/teach/lenet_demo.hpp"

namespace paraplan::cli {

namespace {

std::vector<std::string> lenet_args(const LenetDemoOptions& o) {
  std::vector<std::string> a{"--threads", std::to_string(o.threads), "lenet", "--data", o.data,
                             "--epochs", std::to_string(o.epochs), "--global-batch", std::to_string(o.global_batch),
                             "--lr", fmt::format("{}", o.lr), "--seed", std::to_string(o.seed),
                             "--log-every", std::to_string(o.log_every)};
  if (o.train_samples > 0) a.insert(a.end(), {"--train-samples", std::to_string(o.train_samples)});
  if (o.test_samples > 0) a.insert(a.end(), {"--test-samples", std::to_string(o.test_samples)});
  return a;
}

nlohmann::json config_json(const LenetDemoOptions& o, int workers) {
  return {{"demo", "ddp-lenet"},      {"model", "LeNet-5"},          {"dataset", "Fashion-MNIST"},
          {"data", o.data},           {"workers", workers},          {"threads_per_worker", o.threads},
          {"global_batch", o.global_batch}, {"epochs", o.epochs},    {"optimizer", "adam"},
          {"lr", o.lr},               {"seed", o.seed},              {"train_samples", o.train_samples},
          {"test_samples", o.test_samples}};
}

void check(const LenetDemoOptions& o) {
  planner::Violations v;
  for (int w : o.workers) {
    if (w < 1 || w > 64) v.add("--workers", std::to_string(w), "each worker count must be between 1 and 64");
    else if (o.global_batch % w != 0)
      v.add("--global-batch", std::to_string(o.global_batch),
            fmt::format("must be divisible by every worker count (the same global batch at each count), not by {}", w));
  }
  if (o.workers.empty()) v.add("--workers", "", "give at least one worker count");
  v.throw_if_any();
}

// One run at `workers`: returns what rank 0 reported; throws with the failing rank's message.
teach::LenetRun run_one(const LenetDemoOptions& o, int workers, std::optional<planner::Store>& store) {
  teach::LenetRun run;
  run.workers = workers;
  const int64_t steps_per_epoch = (o.train_samples > 0 ? std::min<int64_t>(o.train_samples, 60000) : 60000) / o.global_batch;
  if (store)
    run.run_id = store->create_run(demo_run_row(fmt::format("demo ddp-lenet workers={}", workers),
                                                config_json(o, workers).dump(), workers,
                                                static_cast<int>(steps_per_epoch * o.epochs)));
  if (store) store->set_running(run.run_id);
  const std::string exe = teach_worker_path();
  const std::vector<std::string> args = lenet_args(o);
  const int port = free_local_port();
  std::vector<WorkerProcess> procs;
  for (int r = 0; r < workers; ++r) {
    WorkerProcess w{exe, args, {}};
    w.env = {{"RANK", std::to_string(r)},         {"WORLD_SIZE", std::to_string(workers)},
             {"LOCAL_RANK", std::to_string(r)},   {"LOCAL_WORLD_SIZE", std::to_string(workers)},
             {"MASTER_ADDR", "127.0.0.1"},        {"MASTER_PORT", std::to_string(port)}};
    for (const auto& kv : worker_thread_env(o.threads)) w.env.push_back(kv);
    procs.push_back(std::move(w));
  }
  Progress progress(o.json ? 1e9 : 5.0);
  progress.start();
  std::vector<planner::StepRecord> pending;
  const LaunchOutcome out = run_workers(procs, [&](int rank, const std::string& line, bool err) {
    if (err) {
      std::cerr << line << "\n";
      return;
    }
    if (rank != 0) return;
    const nlohmann::json e = nlohmann::json::parse(line, nullptr, false);
    if (e.is_discarded()) return;
    teach::apply_lenet_event(run, e);
    if (o.json) {
      nlohmann::json fwd = e;
      fwd["demo"] = "ddp-lenet";
      fwd["workers"] = workers;
      fwd["run_id"] = run.run_id;
      std::cout << fwd.dump() << "\n" << std::flush;
    }
    const std::string kind = e.value("event", "");
    if (kind == "step") {
      const teach::LenetStep& s = run.steps.back();
      pending.push_back({run.run_id, 0, s.step, s.loss, s.step_s, s.comm_s,
                         static_cast<double>(o.global_batch) / std::max(s.step_s, 1e-9)});
      if (!o.json)
        progress.update(fmt::format("{} worker(s), epoch {}/{}", workers, s.epoch, o.epochs),
                        static_cast<double>(s.step), static_cast<double>(steps_per_epoch * o.epochs),
                        fmt::format("step {}/{}, loss {:.4f} nats/image", s.step, steps_per_epoch * o.epochs, s.loss));
    } else if (kind == "epoch") {
      const teach::LenetEpoch& ep = run.epoch_results.back();
      if (store) {
        store->add_steps(pending);
        store->add_metrics({{run.run_id, "test_accuracy", ep.epoch, ep.test_accuracy, "fraction"},
                            {run.run_id, "test_loss", ep.epoch, ep.test_loss, "nats/image"},
                            {run.run_id, "train_loss", ep.epoch, ep.train_loss, "nats/image"},
                            {run.run_id, "epoch_s", ep.epoch, ep.epoch_s, "s"},
                            {run.run_id, "comm_s", ep.epoch, ep.comm_s, "s"},
                            {run.run_id, "samples_per_s", ep.epoch, static_cast<double>(ep.samples) / ep.epoch_s,
                             "images/s"}});
      }
      pending.clear();
      if (!o.json)
        fmt::print("  {} worker(s), epoch {}/{}: {:.2f} s, test accuracy {:.2f}%, test loss {:.4f} nats/image\n",
                   workers, ep.epoch, o.epochs, ep.epoch_s, 100 * ep.test_accuracy, ep.test_loss);
    }
  });
  if (!out.ok) {
    const std::string msg = fmt::format("{} worker(s): {}", workers, out.error);
    if (store) store->fail_run(run.run_id, msg);
    if (out.exit_code == 2) throw planner::PlanError("--data", o.data, out.error);
    throw std::runtime_error(msg);
  }
  if (store) store->finish_run(run.run_id);
  return run;
}

}  // namespace

int run_lenet_demo(const LenetDemoOptions& o) {
  check(o);
  std::optional<planner::Store> store;
  if (!o.db.empty()) store.emplace(o.db);
  if (!o.json)
    fmt::print("LeNet-5 on Fashion-MNIST ({}), data parallel over gloo: worker counts {}, global batch {} images, "
               "{} epoch(s), {} thread(s) per worker{}\n",
               o.data, fmt::join(o.workers, ", "), o.global_batch, o.epochs, o.threads,
               store ? ", runs stored in " + o.db : "");
  std::vector<teach::LenetRun> runs;
  for (int w : o.workers) runs.push_back(run_one(o, w, store));
  const teach::TextTable table = teach::lenet_table(runs);
  if (o.json) {
    std::cout << nlohmann::json{{"event", "table"}, {"demo", "ddp-lenet"}, {"headers", table.headers},
                                {"rows", table.rows}, {"notes", table.notes}}
                     .dump()
              << "\n";
  } else {
    fmt::print("\n{}", teach::render(table));
  }
  if (!o.plot.empty()) write_plot(teach::lenet_charts(runs), o.plot);
  return 0;
}

}  // namespace paraplan::cli

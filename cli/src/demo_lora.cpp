// paraplan demo lora-ranks: the chapter's second exercise. One paraplan-teach-worker process pretrains
// the small model and fine-tunes it once per variant; this side stores each phase as a run (plan,
// steps, peak memory measured and predicted, validation loss and task accuracy as metrics), prints
// progress and the table, and draws the plot.
#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "demo_common.hpp"
#include "demo_options.hpp"
#include "launcher.hpp"
#include "paraplan/error.hpp"
#include "paraplan/store.hpp"
#include "paraplan/teach/lora_demo.hpp"

namespace paraplan::cli {

namespace {

namespace fs = std::filesystem;

int task_size(const LoraDemoOptions& o) { return o.task_size > 0 ? o.task_size : o.task == "copy" ? 5 : 2; }

std::vector<std::string> lora_args(const LoraDemoOptions& o, int threads, const std::string& work) {
  std::string ranks, targets;
  for (int r : o.ranks) ranks += (ranks.empty() ? "" : ",") + std::to_string(r);
  for (const std::string& t : o.targets) targets += (targets.empty() ? "" : ",") + t;
  std::vector<std::string> a{"--threads", std::to_string(threads), "lora-ranks", "--corpus", o.corpus,
                             "--work-dir", work, "--ranks", ranks, "--targets", targets,
                             "--pretrain-steps", std::to_string(o.pretrain_steps),
                             "--finetune-steps", std::to_string(o.finetune_steps),
                             "--pretrain-lr", fmt::format("{}", o.pretrain_lr), "--full-lr", fmt::format("{}", o.full_lr),
                             "--lora-lr", fmt::format("{}", o.lora_lr), "--eval-problems", std::to_string(o.eval_problems),
                             "--task", o.task, "--task-size", std::to_string(task_size(o)), "--seed", std::to_string(o.seed)};
  if (o.quick) a.push_back("--quick");
  return a;
}

}  // namespace

int run_lora_demo(const LoraDemoOptions& o) {
  planner::Violations v;
  if (o.ranks.empty()) v.add("--ranks", "", "give at least one LoRA rank");
  for (int r : o.ranks)
    if (r < 1 || r > 1024) v.add("--ranks", std::to_string(r), "each rank must be between 1 and 1024");
  if (o.task != "copy" && o.task != "addition") v.add("--task", o.task, "the tasks are \"copy\" and \"addition\"");
  v.throw_if_any();
  std::optional<planner::Store> store;
  if (!o.db.empty()) store.emplace(o.db);
  const std::string work = !o.work_dir.empty() ? o.work_dir
                           : (fs::absolute(o.db.empty() ? "." : o.db).parent_path() / "paraplan-lora-ranks").string();
  const int threads = o.threads > 0 ? o.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const int total_steps = o.pretrain_steps + o.finetune_steps * static_cast<int>(1 + o.ranks.size());
  if (!o.json)
    fmt::print("LoRA at ranks {} against full fine-tuning: a small LLaMA-shaped model pretrained on the fortunes "
               "corpus ({}), fine-tuned on {}; {} pretraining + {} x {} fine-tuning steps, {} thread(s){}\n",
               fmt::join(o.ranks, ", "), o.corpus,
               o.task == "copy" ? fmt::format("copying {} random letters", task_size(o))
                                : fmt::format("{}-digit addition (answer reversed)", task_size(o)),
               o.pretrain_steps, 1 + o.ranks.size(), o.finetune_steps,
               threads, store ? ", runs stored in " + o.db : "");
  teach::LoraRanksRun run;
  int64_t run_id = 0;
  int done_steps = 0;
  std::string phase;
  std::vector<planner::StepRecord> pending;
  Progress progress(o.json ? 1e9 : 5.0);
  progress.start();
  WorkerProcess w{teach_worker_path(), lora_args(o, threads, work), worker_thread_env(threads)};
  const LaunchOutcome out = run_workers({w}, [&](int, const std::string& line, bool err) {
    if (err) {
      std::cerr << line << "\n";
      return;
    }
    const nlohmann::json e = nlohmann::json::parse(line, nullptr, false);
    if (e.is_discarded()) return;
    teach::apply_lora_event(run, e);
    const std::string kind = e.value("event", "");
    if (kind == "phase") {
      phase = e.value("phase", "");
      if (store) {
        planner::NewRun row = demo_run_row("demo lora-ranks: " + phase, e.value("plan", nlohmann::json::object()).dump(),
                                           1, e.value("steps", 0));
        row.predicted_peak_bytes = e.value("predicted_peak_bytes", 0.0);
        run_id = store->create_run(row);
        store->set_running(run_id);
      }
    }
    if (o.json) {
      nlohmann::json fwd = e;
      fwd["demo"] = "lora-ranks";
      fwd["run_id"] = run_id;
      std::cout << fwd.dump() << "\n" << std::flush;
    }
    if (kind == "step") {
      ++done_steps;
      const double loss = e.value("loss", 0.0), step_s = e.value("step_s", 0.0);
      pending.push_back({run_id, 0, e.value("step", 0), loss, step_s, 0.0, 1024.0 / std::max(step_s, 1e-9)});
      if (!o.json)
        progress.update(phase, done_steps, total_steps,
                        fmt::format("step {}/{} of this phase, loss {:.4f} nats/token; all phases: step {}/{}",
                                    e.value("step", 0), e.value("steps", 0), loss, done_steps, total_steps));
    } else if (kind == "result") {
      const teach::LoraResult& r = run.results.back();
      if (store) {
        store->add_steps(pending);
        store->add_memory({{run_id, 0, "peak", r.peak_predicted_bytes, r.peak_measured_bytes}});
        store->add_metrics({{run_id, "val_loss", 0, r.val_loss, "nats/token"},
                            {run_id, "task_accuracy", 0, r.accuracy, "fraction"},
                            {run_id, "trainable_params", 0, static_cast<double>(r.trainable), "parameters"},
                            {run_id, "trainable_params_planner", 0, static_cast<double>(r.trainable_planner), "parameters"},
                            {run_id, "step_s", 0, r.step_s, "s"}});
        store->finish_run(run_id);
      }
      pending.clear();
      if (!o.json)
        fmt::print("  {}: val. loss {:.4f} nats/token, task accuracy {:.1f}% ({}/{}), e.g. {}\n", r.phase, r.val_loss,
                   100 * r.accuracy, r.correct, r.problems, r.samples.empty() ? "" : r.samples.front());
    }
  });
  if (!out.ok) {
    if (store && run_id) store->fail_run(run_id, out.error);
    if (out.exit_code == 2) throw planner::PlanError("--corpus", o.corpus, out.error);
    throw std::runtime_error(out.error);
  }
  const teach::TextTable table = teach::lora_table(run);
  if (o.json)
    std::cout << nlohmann::json{{"event", "table"}, {"demo", "lora-ranks"}, {"headers", table.headers},
                                {"rows", table.rows}, {"notes", table.notes}}.dump()
              << "\n";
  else
    fmt::print("\n{}", teach::render(table));
  if (!o.plot.empty()) write_plot(teach::lora_charts(run), o.plot);
  return 0;
}

}  // namespace paraplan::cli

// paraplan-teach-worker: one rank of a `paraplan demo` exercise (teach_worker.hpp). Started by
// `paraplan demo`, one process per rank with RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT set, or
// alone. Prints JSON lines on stdout; on failure one error line on stderr and a non-zero exit.
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <dlfcn.h>

#include <iostream>

#include "errors.hpp"
#include "paraplan/error.hpp"
#include "paraplan/exec/idx.hpp"
#include "paraplan/exec/launch_env.hpp"
#include "paraplan/exec/memory_meter.hpp"
#include "paraplan/exec/teach_data.hpp"
#include "teach_worker.hpp"

namespace paraplan::exec {

// Invalid UTF-8 (a model's undecodable bytes in a sample answer) becomes U+FFFD instead of an exception.
void emit(const nlohmann::json& event) {
  std::cout << event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n" << std::flush;
}

std::unique_ptr<ProcessGroups> data_parallel_groups(int timeout_s) {
  const std::optional<LaunchEnv> env = launch_env();
  planner::ParallelPlan par;
  par.dp = env ? env->world_size : 1;
  const planner::RankGrid grid(par, {planner::Axis::tp, planner::Axis::cp, planner::Axis::dp, planner::Axis::pp});
  if (!env || env->world_size == 1) return make_fake_groups(0, grid);  // a world of one: exact
  GlooOptions go;
  go.timeout = std::chrono::seconds(timeout_s);
  return make_gloo_groups(*env, grid, go);
}

}  // namespace paraplan::exec

namespace {

// OpenBLAS keeps its own thread pool beside ATen's; with several ranks per machine both are limited.
void set_threads(int n) {
  at::set_num_threads(n);
  using SetThreads = void (*)(int);
  if (auto f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(n);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace paraplan::exec;
  install_counting_allocator();  // before any tensor: the LoRA exercise measures peak memory
  CLI::App app{"paraplan-teach-worker: one rank of a `paraplan demo` exercise (start it through `paraplan demo`)."};
  app.require_subcommand(1);
  int threads = 1;
  app.add_option("--threads", threads, "compute threads of this rank")->check(CLI::Range(1, 256));

  LenetOptions lo;
  lo.data_dir = default_fashion_mnist_dir();
  CLI::App* lenet = app.add_subcommand("lenet", "LeNet-5 on Fashion-MNIST, data parallel over WORLD_SIZE ranks");
  lenet->add_option("--data", lo.data_dir, "directory with Fashion-MNIST's IDX files");
  lenet->add_option("--epochs", lo.epochs)->check(CLI::Range(1, 1000));
  lenet->add_option("--global-batch", lo.global_batch)->check(CLI::Range(1, 60000));
  lenet->add_option("--lr", lo.lr)->check(CLI::PositiveNumber);
  lenet->add_option("--seed", lo.seed);
  lenet->add_option("--train-samples", lo.train_samples, "0: all")->check(CLI::NonNegativeNumber);
  lenet->add_option("--test-samples", lo.test_samples, "0: all")->check(CLI::NonNegativeNumber);
  lenet->add_option("--log-every", lo.log_every)->check(CLI::Range(1, 1000000));
  lenet->add_option("--timeout", lo.timeout_s)->check(CLI::Range(1, 86400));

  LoraRanksOptions ro;
  ro.corpus = default_fortunes_dir();
  ro.work_dir = "paraplan-lora-ranks";
  CLI::App* lora = app.add_subcommand("lora-ranks", "pretrain a small LLaMA, then fine-tune it fully and with LoRA");
  lora->add_option("--corpus", ro.corpus, "fortune file or directory");
  lora->add_option("--work-dir", ro.work_dir, "pretrained model, data files");
  lora->add_option("--ranks", ro.ranks)->delimiter(',')->check(CLI::Range(1, 1024));
  lora->add_option("--targets", ro.targets)->delimiter(',');
  lora->add_option("--pretrain-steps", ro.pretrain_steps)->check(CLI::Range(1, 1000000));
  lora->add_option("--finetune-steps", ro.finetune_steps)->check(CLI::Range(1, 1000000));
  lora->add_option("--pretrain-lr", ro.pretrain_lr)->check(CLI::PositiveNumber);
  lora->add_option("--full-lr", ro.full_lr)->check(CLI::PositiveNumber);
  lora->add_option("--lora-lr", ro.lora_lr)->check(CLI::PositiveNumber);
  lora->add_option("--eval-problems", ro.eval_problems)->check(CLI::Range(1, 100000));
  lora->add_option("--task", ro.task, "addition or copy");
  lora->add_option("--task-size", ro.digits, "digits of each addend / letters to copy")->check(CLI::Range(1, 32));
  lora->add_option("--seed", ro.seed);
  lora->add_flag("--quick", ro.quick, "a 0.13 M-parameter model (tests)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  const char* rank = std::getenv("RANK");
  const std::string who = std::string("paraplan-teach-worker: rank ") + (rank ? rank : "0");
  try {
    set_threads(threads);
    if (lenet->parsed()) return run_lenet(lo);
    if (lora->parsed()) return run_lora_ranks(ro);
  } catch (const paraplan::planner::PlanError& e) {
    for (const auto& v : e.violations()) std::cerr << who << ": invalid input: " << v.to_string() << "\n";
    return 2;
  } catch (const DataError& e) {
    std::cerr << who << ": " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << who << ": " << error_message(e) << "\n";
    return 1;
  }
  return 0;
}

// paraplan demo: the textbook chapter's exercises and its memory trade-offs (issue 15).
#include "commands.hpp"
#include "demo_options.hpp"

namespace paraplan::cli {

Command add_demo_command(CLI::App& app) {
  CLI::App* demo = app.add_subcommand(
      "demo",
      "The textbook chapter (large-model training: LoRA, DP/DDP, FSDP, TP, PP) made runnable:\n"
      "  paraplan demo ddp-lenet      exercise 1: LeNet-5 on Fashion-MNIST, data parallel at 1, 2, 4 workers\n"
      "  paraplan demo memory-tour    full fine-tune -> LoRA -> QLoRA; DP -> ZeRO-1/2/3; TP; PP; recompute\n"
      "Runs go into the run store (--db); `paraplan runs` lists them. docs/teaching.md explains the results.");
  demo->require_subcommand(1);

  auto lo = std::make_shared<LenetDemoOptions>();
  CLI::App* lenet = demo->add_subcommand(
      "ddp-lenet",
      "Exercise 1 of the chapter: LeNet-5 (conv 6@5x5 -> pool -> conv 16@5x5 -> pool -> 120 -> 84 -> 10) on\n"
      "Fashion-MNIST (Debian package dataset-fashion-mnist), trained data parallel — every worker a whole\n"
      "replica, gradients all-reduced over gloo each step, the same global batch at every worker count.\n"
      "Prints, per worker count: time per epoch, samples/s, speed-up over 1 worker, communication share and\n"
      "test accuracy. Example:\n"
      "  paraplan demo ddp-lenet --workers 1,2,4 --epochs 5 --plot lenet.png");
  lenet->add_option("--workers", lo->workers, "worker counts, comma-separated (default 1,2,4)")->delimiter(',');
  lenet->add_option("--epochs", lo->epochs, "passes over the 60,000 training images (default 5)")->check(CLI::Range(1, 1000));
  lenet->add_option("--global-batch", lo->global_batch, "images per optimizer step over all workers (default 64)")
      ->check(CLI::Range(1, 60000));
  lenet->add_option("--lr", lo->lr, "Adam learning rate (default 0.001)")->check(CLI::PositiveNumber);
  lenet->add_option("--seed", lo->seed, "initialisation and shuffling (default 0)");
  lenet->add_option("--threads", lo->threads, "compute threads per worker (default 1)")->check(CLI::Range(1, 256));
  lenet->add_option("--train-samples", lo->train_samples, "use only the first N training images (0: all)")
      ->check(CLI::NonNegativeNumber);
  lenet->add_option("--test-samples", lo->test_samples, "use only the first N test images (0: all)")
      ->check(CLI::NonNegativeNumber);
  lenet->add_option("--log-every", lo->log_every, "store the loss every N steps (default 10)")->check(CLI::Range(1, 1000000));
  lenet->add_option("--data", lo->data, "directory with Fashion-MNIST's *-idx*-ubyte.gz files");
  lenet->add_option("--db", lo->db, "run store, a SQLite file (default runs.sqlite; \"\" to store nothing)");
  lenet->add_option("--plot", lo->plot, "write the loss, accuracy and time-per-epoch charts to FILE.png or FILE.svg");
  lenet->add_flag("--json", lo->json, "print the workers' events and the table as JSON lines (for the GUI)");

  auto to = std::make_shared<TourOptions>();
  CLI::App* tour = demo->add_subcommand(
      "memory-tour",
      "The chapter's memory trade-offs step by step, each turning one knob of a plan and printing what changed,\n"
      "by how much and which formula says so (the same steps as the GUI's Learn tab).");
  tour->add_option("--model", to->model, "model preset (default llama3-8b; `paraplan models` lists them)");
  tour->add_flag("--json", to->json, "print the steps as JSON");

  return {demo, [=]() -> int {
            if (lenet->parsed()) return run_lenet_demo(*lo);
            if (tour->parsed()) return run_memory_tour(*to);
            return 2;
          }};
}

}  // namespace paraplan::cli

// paraplan demo: the textbook chapter's exercises and its memory trade-offs (issue 15).
#include "commands.hpp"
#include "demo_options.hpp"

namespace paraplan::cli {

namespace {

// The options every training demo shares: where its runs are stored, its charts, and JSON events.
void add_output_options(CLI::App* app, std::string& db, std::string& plot, bool& json, const std::string& charts,
                        const std::string& whose_events) {
  app->add_option("--db", db, "run store, a SQLite file (default runs.sqlite; \"\" to store nothing)");
  app->add_option("--plot", plot, "write the " + charts + " to FILE.png or FILE.svg");
  app->add_flag("--json", json, "print the " + whose_events + " events and the table as JSON lines (for the GUI)");
}

}  // namespace

Command add_demo_command(CLI::App& app) {
  CLI::App* demo = app.add_subcommand(
      "demo",
      "The textbook chapter (large-model training: LoRA, DP/DDP, FSDP, TP, PP) made runnable:\n"
      "  paraplan demo ddp-lenet      exercise 1: LeNet-5 on Fashion-MNIST, data parallel at 1, 2, 4 workers\n"
      "  paraplan demo lora-ranks     exercise 2: LoRA at r = 4, 8, 16 against full fine-tuning\n"
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
  lenet->add_option("--lr", lo->lr, "Adam learning rate (default 0.001)")->check(kPositive);
  lenet->add_option("--seed", lo->seed, "initialisation and shuffling (default 0)");
  lenet->add_option("--threads", lo->threads, "compute threads per worker (default 1)")->check(CLI::Range(1, 256));
  lenet->add_option("--train-samples", lo->train_samples, "use only the first N training images (0: all)")
      ->check(kNonNegative);
  lenet->add_option("--test-samples", lo->test_samples, "use only the first N test images (0: all)")
      ->check(kNonNegative);
  lenet->add_option("--log-every", lo->log_every, "store the loss every N steps (default 10)")->check(CLI::Range(1, 1000000));
  lenet->add_option("--data", lo->data, "directory with Fashion-MNIST's *-idx*-ubyte.gz files");
  add_output_options(lenet, lo->db, lo->plot, lo->json, "loss, accuracy and time-per-epoch charts", "workers'");

  auto ro = std::make_shared<LoraDemoOptions>();
  CLI::App* lora = demo->add_subcommand(
      "lora-ranks",
      "Exercise 2 of the chapter: LoRA at several ranks against full fine-tuning. Pretrains a small LLaMA-shaped\n"
      "model (3.0 M parameters, byte vocabulary) on the English fortune cookies of the Debian package `fortunes`,\n"
      "then fine-tunes it on a generated task — copying 5 random letters (\"kqzvb=kqzvb\"), or 2-digit addition\n"
      "with the answer reversed (\"47+85=231\") — fully, and with LoRA on q_proj and v_proj (alpha = 4 r, as the\n"
      "chapter's r = 8, alpha = 32) at each rank, from the same weights, data and seed. Table: trainable\n"
      "parameters (checked against the planner), time per step, peak memory measured and predicted, validation\n"
      "loss and exact-answer accuracy on held-out problems. Example:\n"
      "  paraplan demo lora-ranks --ranks 4,8,16 --plot lora.png");
  lora->add_option("--ranks", ro->ranks, "LoRA ranks, comma-separated (default 4,8,16)")->delimiter(',');
  lora->add_option("--targets", ro->targets, "adapted projections, comma-separated (default q_proj,v_proj)")
      ->delimiter(',');
  lora->add_option("--pretrain-steps", ro->pretrain_steps, "pretraining steps (default 300)")->check(CLI::Range(1, 1000000));
  lora->add_option("--finetune-steps", ro->finetune_steps, "fine-tuning steps per variant (default 400)")
      ->check(CLI::Range(1, 1000000));
  lora->add_option("--pretrain-lr", ro->pretrain_lr, "AdamW learning rate of pretraining (default 0.001)")->check(kPositive);
  lora->add_option("--full-lr", ro->full_lr, "of full fine-tuning (default 0.001)")->check(kPositive);
  lora->add_option("--lora-lr", ro->lora_lr, "of LoRA fine-tuning (default 0.005)")->check(kPositive);
  lora->add_option("--eval-problems", ro->eval_problems, "held-out problems for the accuracy (default 200)")
      ->check(CLI::Range(1, 100000));
  lora->add_option("--task", ro->task,
                   "the fine-tuning task: copy (\"kqzvb=kqzvb\", default) or addition (\"47+85=231\", the answer\n"
                   "reversed)");
  lora->add_option("--task-size", ro->task_size, "letters to copy (default 5) / digits per addend (default 2); 0: the task's default")
      ->check(CLI::Range(0, 32));
  lora->add_option("--seed", ro->seed, "initialisation, data and problems (default 0)");
  lora->add_option("--threads", ro->threads, "compute threads (default: every core)")->check(CLI::Range(0, 256));
  lora->add_flag("--quick", ro->quick, "a 0.13 M-parameter model instead (tests; its accuracy means nothing)");
  lora->add_option("--corpus", ro->corpus, "pretraining text: a fortune file or directory (default /usr/share/games/fortunes)");
  lora->add_option("--work-dir", ro->work_dir, "pretrained model and data files (default: paraplan-lora-ranks beside --db)");
  add_output_options(lora, ro->db, ro->plot, ro->json, "loss and accuracy charts", "worker's");

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
            if (lora->parsed()) return run_lora_demo(*ro);
            return 2;
          }};
}

}  // namespace paraplan::cli

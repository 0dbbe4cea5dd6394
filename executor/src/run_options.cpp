#include "paraplan/exec/run_options.hpp"

#include <filesystem>
#include <fmt/format.h>

#include "paraplan/error.hpp"
#include "paraplan/exec/option_checks.hpp"

namespace paraplan::exec {

void add_run_options(CLI::App& app, RunOptions& o) {
  app.add_option("--set", o.overrides, "override a plan field before running, e.g. --set parallel.zero=2");
  app.add_option("--steps", o.steps, "optimizer steps (default 5)")->check(CLI::Range(1, 1 << 30));
  app.add_option("--threads", o.threads, "compute threads per worker (default: CPU threads / workers)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--data", o.data, "training text: a text file, or JSONL with {\"text\"} or databricks-dolly-15k "
                                   "records (default: a built-in synthetic corpus)");
  app.add_option("--load", o.load, "Hugging Face directory (config.json + *.safetensors) with the starting weights "
                                   "(default: the directory of model.hf_config when it holds weights)");
  app.add_option("--adapter", o.adapter, "peft LoRA adapter directory to start from");
  app.add_option("--save", o.save, "write the trained model as a Hugging Face directory");
  app.add_option("--save-adapter", o.save_adapter, "write the LoRA adapter alone (peft names and adapter_config.json)");
  app.add_option("--save-merged", o.save_merged, "write the model with the LoRA adapter merged in (merge-and-unload)");
  app.add_option("--lr", o.lr, "AdamW learning rate (default 1e-3)")->check(kPositive);
  app.add_option("--weight-decay", o.weight_decay, "AdamW decoupled weight decay (default 0)")->check(kNonNegative);
  app.add_option("--seed", o.seed, "seed of the initial weights and of the data sampling (default 0)")
      ->check(kNonNegative);
  app.add_option("--fake-rank", o.fake_rank,
                 "run only this rank, alone, with a fake communicator: the exact memory and compute of one rank "
                 "of a large plan on one machine (the numbers it trains are not meaningful)")
      ->check(kNonNegative);
  app.add_option("--timeout", o.timeout_s, "seconds to wait for the other ranks (store, collectives; default 120)")
      ->check(CLI::Range(1, 86400));
  app.add_option("--checkpoint-every", o.checkpoint_every,
                 "write a training checkpoint (weights, optimizer moments, step; each rank its own shard) every N "
                 "steps into --checkpoint-dir, as DIR/step-0000000N; a directory appears only once complete")
      ->check(CLI::Range(1, 1 << 30));
  app.add_option("--checkpoint-dir", o.checkpoint_dir,
                 "where --checkpoint-every writes (default: the --resume directory); a directory every rank can "
                 "reach (a shared file system across nodes)");
  app.add_option("--resume", o.resume,
                 "continue a run from a checkpoint: a --checkpoint-dir (its latest complete step) or one step-N "
                 "directory; --steps counts from the start, so the run trains steps N+1..--steps. The plan, number "
                 "of ranks, --lr, --weight-decay, --seed and --data must be those it was written with");
}

void check_run_options(const RunOptions& o) {
  planner::Violations v;
  if (!o.checkpoint_dir.empty() && o.checkpoint_every == 0)
    v.add("--checkpoint-dir", o.checkpoint_dir, "needs --checkpoint-every N (how often to write)");
  if (o.checkpoint_every > 0 && o.checkpoint_dir.empty() && o.resume.empty())
    v.add("--checkpoint-every", std::to_string(o.checkpoint_every),
          "needs --checkpoint-dir DIR (or --resume DIR, whose checkpoints it then continues)");
  if (o.fake_rank >= 0 && (o.checkpoint_every > 0 || !o.resume.empty()))
    v.add("--fake-rank", std::to_string(o.fake_rank),
          "a fake rank's numbers are not meaningful: it neither writes nor resumes checkpoints");
  v.throw_if_any();
}

std::string checkpoint_root(const RunOptions& o) {
  namespace fs = std::filesystem;
  if (o.checkpoint_every == 0) return "";
  if (!o.checkpoint_dir.empty()) return o.checkpoint_dir;
  // --resume names the root, or one step directory inside it (the one with an index.json).
  fs::path r = fs::path(o.resume).lexically_normal();
  if (r.filename().empty()) r = r.parent_path();  // "ckpt/step-00000004/"
  return fs::exists(r / "index.json") ? r.parent_path().string() : r.string();
}

std::vector<std::string> run_option_args(const RunOptions& o) {
  namespace fs = std::filesystem;
  std::vector<std::string> a{"--steps", std::to_string(o.steps), "--lr", fmt::format("{}", o.lr), "--weight-decay",
                             fmt::format("{}", o.weight_decay), "--seed", std::to_string(o.seed), "--timeout",
                             std::to_string(o.timeout_s)};
  for (const auto& s : o.overrides) a.insert(a.end(), {"--set", s});
  if (o.threads > 0) a.insert(a.end(), {"--threads", std::to_string(o.threads)});
  if (o.fake_rank >= 0) a.insert(a.end(), {"--fake-rank", std::to_string(o.fake_rank)});
  if (o.checkpoint_every > 0) a.insert(a.end(), {"--checkpoint-every", std::to_string(o.checkpoint_every)});
  const std::pair<const char*, const std::string*> paths[] = {
      {"--data", &o.data}, {"--load", &o.load}, {"--adapter", &o.adapter}, {"--save", &o.save},
      {"--save-adapter", &o.save_adapter}, {"--save-merged", &o.save_merged}, {"--checkpoint-dir", &o.checkpoint_dir},
      {"--resume", &o.resume}};
  for (const auto& [flag, value] : paths)
    if (!value->empty()) a.insert(a.end(), {flag, fs::absolute(*value).string()});
  return a;
}

}  // namespace paraplan::exec

// paraplan export --format megatron|deepspeed|torchtitan|accelerate|torchrun FILE.json [--set k=v ...] [--out FILE]
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "commands.hpp"
#include "paraplan/export.hpp"
#include "paraplan/plan_io.hpp"

namespace paraplan::cli {

using namespace planner;

namespace {

struct ExportCliOptions {
  std::string file;
  std::string format;
  std::vector<std::string> overrides;
  std::string out;
};

}  // namespace

Command add_export_command(CLI::App& app) {
  auto [sub, o] = subcommand<ExportCliOptions>(app, "export", R"(Write a plan in the launch format of another tool. Every flag and key name is checked against that
tool's source at a cited version (docs/export.md). A plan the tool cannot express — say context
parallelism in DeepSpeed, LoRA in Megatron-LM, ZeRO-1 in FSDP — is an error (exit 2) naming the field
and the reason; nothing is dropped silently. What the user must still add (data, tokenizer, learning
rate, model-code changes) is printed as notes on stderr. Formats and examples:
  megatron    Megatron-LM pretrain_gpt.py flags, one per line, as a bash array MEGATRON_ARGS
                paraplan export --format megatron data/examples/llama3-8b.json --set parallel.tp=2 \
                  --set parallel.dp=4 --set parallel.sequence_parallel=true
  deepspeed   a DeepSpeed JSON config (ZeRO stage, offload, AutoTP, batch sizes, precision)
                paraplan export --format deepspeed data/examples/llama3-8b.json --set parallel.zero=2 \
                  --set training.recompute=full --out ds_config.json
  torchtitan  a torchtitan TOML job config ([parallelism], [training], [activation_checkpoint])
                paraplan export --format torchtitan data/examples/llama3-8b.json --set parallel.zero=3 \
                  --set training.recompute=none --out llama3_8b.toml
  accelerate  an accelerate FSDP config YAML (sharding strategy, wrapping, offload, mixed precision)
                paraplan export --format accelerate data/examples/llama3-8b.json --set parallel.zero=3 \
                  --set training.recompute=full --out fsdp.yaml
  torchrun    a Slurm sbatch script running `paraplan run` on every rank, with the torchrun line
                paraplan export --format torchrun data/examples/llama3-8b.json --out job.sbatch)");
  add_plan_file(*sub, o->file);
  sub->add_option("--format,-f", o->format, "target: megatron, deepspeed, torchtitan, accelerate or torchrun")
      ->required()
      ->check(CLI::IsMember(export_format_names()));
  add_overrides(*sub, o->overrides, "parallel.zero=3");
  sub->add_option("--out,-o", o->out, "write to this file instead of standard output");
  return {sub, [o] {
            const Plan plan = load_plan(o->file, o->overrides);
            ExportOptions options;
            options.plan_name = std::filesystem::path(o->file).stem().string();
            const ExportResult r = export_plan(plan, parse_export_format(o->format), options);
            if (o->out.empty()) {
              std::cout << r.text << std::flush;
            } else {
              std::ofstream out(o->out);
              out << r.text;
              out.close();
              if (!out) {
                std::cerr << "paraplan export: cannot write " << o->out << "\n";
                return 1;
              }
              if (o->format == "torchrun") ::chmod(o->out.c_str(), 0755);  // a script
              std::cerr << "wrote " << o->out << " (" << r.text.size() << " bytes, " << o->format << ")\n";
            }
            for (const auto& n : r.notes) std::cerr << "note: " << n << "\n";
            return 0;
          }};
}

}  // namespace paraplan::cli

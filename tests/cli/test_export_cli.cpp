// `paraplan export` end to end: every format written with --out parses, passes its tool's checker
// (export_checkers.hpp) and carries the plan's degrees, inexpressible plans exit 2 naming the field, and --help
// teaches each format.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "../planner/config_parsers.hpp"
#include "../planner/export_checkers.hpp"
#include "run_paraplan.hpp"

using nlohmann::json;

namespace {

using clitest::example;
using clitest::Result;
using clitest::run;

std::string temp(const std::string& name) { return (std::filesystem::temp_directory_path() / name).string(); }

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The "note: " lines paraplan printed, without the prefix.
std::vector<std::string> notes_in(const std::string& out) {
  std::vector<std::string> notes;
  for (size_t at = out.find("note: "); at != std::string::npos; at = out.find("note: ", at + 1)) {
    const size_t end = out.find('\n', at);
    notes.push_back(out.substr(at + 6, end == std::string::npos ? std::string::npos : end - at - 6));
  }
  return notes;
}

// The tool's checker on an export and the notes printed with it: every rule it breaks fails the test.
void check_with_tool(const std::string& format, const std::string& text, const std::string& out) {
  for (const auto& p : exportcheck::check_export(paraplan::planner::parse_export_format(format), text, notes_in(out)))
    ADD_FAILURE() << p << "\n--- " << format << " export:\n" << text;
}

// Exports the example with `sets` to a file and returns the file's text; fails the test on a non-zero exit
// or on any rule of the tool's checker the file breaks.
std::string export_to_file(const std::string& format, const std::string& sets, const std::string& name) {
  const std::string path = temp(name);
  std::filesystem::remove(path);
  const Result r = run("export --format " + format + " " + example() + " " + sets + " --out " + path);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("wrote " + path), std::string::npos) << r.out;
  const std::string text = read(path);
  check_with_tool(format, text, r.out);
  return text;
}

}  // namespace

// The example (dp 8, ZeRO-0, selective recompute) is a Megatron-LM plan as it stands.
TEST(CliExport, MegatronToStdout) {
  const Result r = run("export --format megatron " + example());
  ASSERT_EQ(r.code, 0) << r.out;
  const std::string text = r.out.substr(0, r.out.find("note: "));  // notes follow on stderr
  check_with_tool("megatron", text, r.out);
  const cfgtest::Flags f = cfgtest::parse_megatron(text);
  EXPECT_EQ(f.at("--tensor-model-parallel-size"), "1");
  EXPECT_EQ(f.at("--global-batch-size"), "1024");
  EXPECT_EQ(f.at("--recompute-granularity"), "selective");
  EXPECT_NE(r.out.find("note: add data, tokenizer"), std::string::npos) << r.out;
}

TEST(CliExport, DeepSpeedJsonWithOverrides) {
  const json c = json::parse(export_to_file(
      "deepspeed", "--set parallel.zero=2 --set training.recompute=full --set training.micro_batch=2", "ds.json"));
  EXPECT_EQ(c["zero_optimization"]["stage"], 2);
  EXPECT_EQ(c["train_micro_batch_size_per_gpu"], 2);
  EXPECT_EQ(c["gradient_accumulation_steps"], 64);  // 1024 / (2 x dp 8)
  EXPECT_EQ(c["train_batch_size"], 1024);
}

TEST(CliExport, TorchtitanToml) {
  const json t = cfgtest::parse_toml(export_to_file(
      "torchtitan", "--set parallel.zero=3 --set training.recompute=none --set parallel.dp=4 --set parallel.cp=2",
      "titan.toml"));
  EXPECT_EQ(t["parallelism"]["data_parallel_shard_degree"], 4);
  EXPECT_EQ(t["parallelism"]["context_parallel_degree"], 2);
  EXPECT_EQ(t["training"]["seq_len"], 8192);
}

TEST(CliExport, AccelerateYaml) {
  const json y = cfgtest::parse_yaml(
      export_to_file("accelerate", "--set parallel.zero=2 --set training.recompute=full", "fsdp.yaml"));
  EXPECT_EQ(y["fsdp_config"]["fsdp_sharding_strategy"], "SHARD_GRAD_OP");
  EXPECT_EQ(y["num_processes"], 8);
}

TEST(CliExport, TorchrunScriptIsExecutable) {
  const std::string text = export_to_file("torchrun", "--set parallel.zero=1", "job.sbatch");
  const cfgtest::Sbatch b = cfgtest::parse_sbatch(text);
  EXPECT_EQ(b.plan["parallel"]["zero"], 1);  // the override travels inside the script
  EXPECT_EQ(b.options.at("ntasks-per-node"), "8");
  EXPECT_EQ(b.plan["training"]["recompute"], "selective");
  struct stat st {};
  ASSERT_EQ(::stat(temp("job.sbatch").c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_IXUSR);
}

TEST(CliExport, InexpressiblePlansExitTwo) {
  Result r = run("export --format deepspeed " + example() + " --set parallel.dp=4 --set parallel.cp=2");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("parallel.cp = 2: DeepSpeed cannot express this"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("training.recompute = selective: DeepSpeed cannot express this"), std::string::npos) << r.out;
  r = run("export --format megatron " + example() + " --set training.lora={\\\"rank\\\":8}");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("training.lora = {rank 8}: Megatron-LM cannot express this"), std::string::npos) << r.out;
  r = run("export --format accelerate " + example() + " --set parallel.zero=1");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("parallel.zero = 1: accelerate cannot express this"), std::string::npos) << r.out;
  r = run("export --format torchtitan " + example());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("training.recompute = selective: torchtitan cannot express this"), std::string::npos) << r.out;
  // nothing is written for a plan that fails
  std::filesystem::remove(temp("never.json"));
  r = run("export --format deepspeed " + example() + " --set parallel.cp=2 --set parallel.dp=4 --out " + temp("never.json"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("parallel.cp = 2: DeepSpeed cannot express this"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(temp("never.json")));
}

TEST(CliExport, BadArgumentsExitTwo) {
  Result r = run("export --format nemo " + example());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--format: nemo not in {megatron,deepspeed,torchtitan,accelerate,torchrun}"), std::string::npos) << r.out;
  r = run("export " + example());  // --format is required
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--format is required"), std::string::npos) << r.out;
  r = run("export --format megatron " + example() + " --set parallel.tp=3");  // an invalid plan
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("parallel.tp = 3"), std::string::npos) << r.out;
}

TEST(CliExport, HelpHasAnExamplePerFormat) {
  const Result r = run("export --help");
  ASSERT_EQ(r.code, 0);
  for (const char* f : {"megatron", "deepspeed", "torchtitan", "accelerate", "torchrun"})
    EXPECT_NE(r.out.find(std::string("paraplan export --format ") + f), std::string::npos) << f;
}

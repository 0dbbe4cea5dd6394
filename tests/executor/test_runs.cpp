// `paraplan run` end to end: worker processes over gloo, the run store, checkpoints, bad input.
// Equivalence: data parallelism in every ZeRO stage, with and without LoRA, reproduces the
// single-process run (losses to 1e-5 relative, final weights to 1% of one AdamW step, 0.01 lr absolute:
// see expect_same_weights).
// Memory: every rank's measured bytes (counting allocator) equal the planner's prediction with the
// executor's framework profile, category by category, to the byte: on CPU the counting allocator sees
// every ATen storage (libtorch-notes.md §2) and planner/lowering/src/executor_ops.cpp derives each tensor by hand,
// so any difference is a missing or extra tensor, never rounding.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "paraplan/exec/hf_dir.hpp"
#include "paraplan/exec/safetensors.hpp"
#include "paraplan/memory.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/store.hpp"
#include "process_util.hpp"
#include "run_util.hpp"
#include "weights_util.hpp"

extern char** environ;

using namespace paraplan::planner;
using paraplan::test::cli;
using paraplan::test::expect_same_weights;
using paraplan::test::expect_failed_run;
using paraplan::test::free_port;
using paraplan::test::shell;
using paraplan::test::test_dir;
using paraplan::test::write_plan;
namespace fs = std::filesystem;
namespace exec = paraplan::exec;

namespace {

// What the planner predicts for one rank of the plan, with the executor's profile.
std::map<std::string, double> predicted(const std::string& plan_file) {
  Plan p = load_plan(plan_file);
  p.training.framework = Framework::paraplan;
  const StageMemory s = estimate_memory(p).per_stage.at(0);
  return {{"weights", s.weights_bytes},     {"gradients", s.gradients_bytes},     {"master", s.master_weights_bytes},
          {"optimizer", s.optimizer_bytes}, {"activations", s.activations_bytes}, {"buffers", s.buffers_bytes},
          {"peak", s.allocated_bytes()}};
}

// Every rank's measured bytes equal the prediction in every category (exact: see the file comment).
void expect_memory_as_predicted(Store& store, int64_t run, const std::string& plan, int ranks) {
  const auto pred = predicted(plan);
  int rows = 0;
  for (const MemoryRecord& m : store.memory(run)) {
    if (!pred.count(m.category)) continue;
    ++rows;
    EXPECT_EQ(m.measured_bytes, pred.at(m.category)) << "rank " << m.rank << " " << m.category << " (bytes)";
  }
  EXPECT_EQ(rows, 7 * ranks);  // every category on every rank
}

struct Case {
  const char* name;
  int dp, zero;
  bool lora;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class DataParallel : public ::testing::TestWithParam<Case> {};

}  // namespace

TEST_P(DataParallel, MatchesTheSingleProcessRunAndThePlannersMemory) {
  const Case c = GetParam();
  const fs::path dir = test_dir();
  const int global = 2 * 2 * c.dp;  // two micro-batches of 2 sequences per rank
  const std::string ref = write_plan(dir, "reference", 1, 0, c.lora, global);
  const std::string plan = write_plan(dir, "plan", c.dp, c.zero, c.lora, global);
  const std::string db = (dir / "runs.sqlite").string();
  paraplan::test::expect_same_training(dir, ref, plan, c.dp, c.lora, db);
  Store store(db);
  expect_memory_as_predicted(store, 2, plan, c.dp);
}

INSTANTIATE_TEST_SUITE_P(Plans, DataParallel,
                         ::testing::Values(Case{"dp2", 2, 0, false}, Case{"dp4", 4, 0, false},
                                           Case{"dp2_zero1", 2, 1, false}, Case{"dp2_zero2", 2, 2, false},
                                           Case{"dp2_zero3", 2, 3, false}, Case{"dp2_lora", 2, 0, true},
                                           Case{"dp4_lora", 4, 0, true}, Case{"dp2_zero1_lora", 2, 1, true},
                                           Case{"dp2_zero2_lora", 2, 2, true}, Case{"dp2_zero3_lora", 2, 3, true}),
                         [](const auto& info) { return std::string(info.param.name); });

namespace {

struct MemoryCase {
  const char* name;
  int zero;
  bool lora;
  int seq;
  bool flash, gpt;
};

void PrintTo(const MemoryCase& c, std::ostream* os) { *os << c.name; }

class Memory : public ::testing::TestWithParam<MemoryCase> {};

}  // namespace

// Eager attention keeps the fp32 probabilities [b*heads, s, s] for the backward instead of recomputing
// them; at seq 128 the attention scores (4 x 2 x 4 x 128 x 128 B = 512 KiB per layer) outweigh every
// other activation of the tiny models, so a missing or extra score-sized tensor could not hide.
TEST_P(Memory, EveryCategoryIsThePredictionToTheByte) {
  const MemoryCase c = GetParam();
  const fs::path dir = test_dir();
  const std::string plan = write_plan(dir, "plan", 2, c.zero, c.lora, 8, c.seq, c.flash, c.gpt);
  const std::string db = (dir / "runs.sqlite").string();
  const auto r = shell(cli("run " + plan + " --db " + db + " --steps 2 --threads 1"));
  ASSERT_EQ(r.code, 0) << r.out;
  Store store(db);
  EXPECT_EQ(store.run(1)->status, RunStatus::succeeded);
  expect_memory_as_predicted(store, 1, plan, 2);
}

INSTANTIATE_TEST_SUITE_P(
    Plans, Memory,
    ::testing::Values(MemoryCase{"dp2_eager", 0, false, 32, false, false},
                      MemoryCase{"dp2_zero3_seq128", 3, false, 128, true, false},
                      MemoryCase{"dp2_zero3_eager_seq128", 3, false, 128, false, false},
                      MemoryCase{"dp2_zero2_lora_eager_seq128", 2, true, 128, false, false},
                      MemoryCase{"dp2_zero1_lora_seq128", 1, true, 128, true, false},
                      MemoryCase{"gpt_dp2_zero1_eager_seq128", 1, false, 128, false, true},
                      MemoryCase{"gpt_dp2_seq128", 0, false, 128, true, true}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Runs, AFakeRankHasTheMemoryOfTheRealOne) {
  // One process standing for rank 1 of a ZeRO-3 plan allocates exactly what rank 1 of the real run does.
  const fs::path dir = test_dir();
  const std::string plan = write_plan(dir, "plan", 2, 3, false, 4);
  const std::string db = (dir / "runs.sqlite").string();
  ASSERT_EQ(shell(cli("run " + plan + " --db " + db + " --steps 2 --threads 1")).code, 0);
  const auto r = shell(cli("run " + plan + " --db " + db + " --steps 2 --threads 1 --fake-rank 1"));
  ASSERT_EQ(r.code, 0) << r.out;
  Store store(db);
  std::map<std::string, double> real, fake;
  for (const auto& m : store.memory(1))
    if (m.rank == 1) real[m.category] = m.measured_bytes;
  for (const auto& m : store.memory(2)) fake[m.category] = m.measured_bytes;
  EXPECT_EQ(store.memory(2).size(), 8u);  // rank 1 only
  EXPECT_EQ(fake, real);
  EXPECT_GT(fake.at("buffers"), 0);
}

TEST(Runs, TorchrunStyleEnvironmentJoinsOneRun) {
  // What torchrun / srun do: start `paraplan run` once per rank with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT.
  const fs::path dir = test_dir();
  const std::string plan = write_plan(dir, "plan", 2, 1, false, 8);
  const std::string db = (dir / "runs.sqlite").string();
  const std::string env = "WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(free_port());
  const std::string cmd = cli("run " + plan + " --db " + db + " --steps 3 --threads 1");
  const auto r = shell("(RANK=0 LOCAL_RANK=0 " + env + " " + cmd + " & a=$!; RANK=1 LOCAL_RANK=1 " + env + " " + cmd +
                       " & b=$!; wait $a; ra=$?; wait $b; echo \"codes $ra $?\")");
  EXPECT_NE(r.out.find("codes 0 0"), std::string::npos) << r.out;
  Store store(db);
  ASSERT_EQ(store.runs().size(), 1u);  // rank 0 created it, rank 1 joined it
  EXPECT_EQ(store.run(1)->status, RunStatus::succeeded);
  EXPECT_EQ(store.steps(1).size(), 6u);
  // The run records the revision the binary was built from (written at build time, not configure time).
  const auto head = shell("git -C " + std::string(PARAPLAN_SOURCE_DIR) + " rev-parse --short=12 HEAD 2>/dev/null");
  if (head.code != 0 || head.out.size() < 12)
    GTEST_SKIP() << "the git revision is not checked: " << PARAPLAN_SOURCE_DIR << " is not a git checkout ("
                 << head.out << ")";
  EXPECT_EQ(store.run(1)->run.git_revision.substr(0, 12), head.out.substr(0, 12));
}

TEST(Runs, DollyRecordsTrainFromTheUniformLoss) {
  const fs::path dir = test_dir();
  std::ofstream(dir / "dolly.jsonl")
      << R"({"instruction": "Name a prime number.", "context": "", "response": "Seven is prime."})" "\n"
      << R"({"instruction": "Add the numbers.", "context": "3 and 4", "response": "The sum of 3 and 4 is 7."})" "\n";
  const std::string plan = write_plan(dir, "plan", 1, 0, false, 4);
  const std::string db = (dir / "runs.sqlite").string();
  const auto r = shell(cli("run " + plan + " --db " + db + " --steps 3 --lr 0.01 --data " + (dir / "dolly.jsonl").string()));
  ASSERT_EQ(r.code, 0) << r.out;
  Store store(db);
  // At initialisation the logits are nearly equal: the final RMSNorm gives each token a vector of RMS 1,
  // so a logit w.x with w ~ N(0, 0.02^2) has variance 0.02^2 * 64 = 0.0256, and the expected loss of
  // Gaussian logits is about ln V + var / 2 = ln 256 + 0.0128 = 5.558 nats.
  EXPECT_NEAR(store.steps(1).at(0).loss, std::log(256.0) + 0.0128, 0.03);
}

// ---- bad input: a clear error naming the file, tensor or field, a non-zero exit, the run marked failed

TEST(RunErrors, NoWeightsInTheCheckpointDirectory) {
  const fs::path dir = test_dir();
  fs::create_directories(dir / "empty");
  const std::string db = (dir / "runs.sqlite").string();
  const auto r = shell(cli("run " + write_plan(dir, "plan", 2, 0, false, 4) + " --db " + db + " --load " +
                                (dir / "empty").string()));
  EXPECT_NE(r.code, 0);
  const std::string expect = (dir / "empty").string() + ": no weights (model.safetensors";
  EXPECT_NE(r.out.find(expect), std::string::npos) << r.out;
  expect_failed_run(db, expect);
}

TEST(RunErrors, CorruptSafetensorsNameTheFile) {
  const fs::path dir = test_dir();
  const std::string plan = write_plan(dir, "plan", 1, 0, false, 2);
  ASSERT_EQ(shell(cli("run " + plan + " --db '' --steps 1 --save " + (dir / "ckpt").string())).code, 0);
  const fs::path file = dir / "ckpt" / "model.safetensors";
  fs::resize_file(file, fs::file_size(file) - 100);
  const std::string db = (dir / "runs.sqlite").string();
  const auto r = shell(cli("run " + plan + " --db " + db + " --load " + (dir / "ckpt").string()));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find(file.string() + ": the tensors cover"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(truncated)"), std::string::npos) << r.out;
  expect_failed_run(db, "model.safetensors: the tensors cover");
}

TEST(RunErrors, ShapeMismatchWithTheModelNamesTheTensor) {
  // A checkpoint of a model with ffn_hidden 128, loaded into tiny-llama (ffn_hidden 160).
  const fs::path dir = test_dir();
  nlohmann::json other = nlohmann::json::parse(std::ifstream(write_plan(dir, "other", 1, 0, false, 2)));
  other["model"] = {{"layers", 2}, {"hidden", 64}, {"heads", 4}, {"kv_heads", 2}, {"ffn_hidden", 128}, {"vocab", 256}};
  std::ofstream(dir / "other.json") << other.dump();
  ASSERT_EQ(shell(cli("run " + (dir / "other.json").string() + " --db '' --steps 1 --save " +
                           (dir / "ckpt").string()))
                .code,
            0);
  const std::string db = (dir / "runs.sqlite").string();
  const auto r =
      shell(cli("run " + write_plan(dir, "plan", 1, 0, false, 2) + " --db " + db + " --load " + (dir / "ckpt").string()));
  EXPECT_NE(r.code, 0);
  const std::string expect = "tensor model.layers.0.mlp.gate_proj.weight has shape [128, 64] but the model needs [160, 64]";
  EXPECT_NE(r.out.find(expect), std::string::npos) << r.out;
  expect_failed_run(db, expect);
}

TEST(RunErrors, WorldSizeDisagreesWithTheEnvironment) {
  const fs::path dir = test_dir();
  const std::string db = (dir / "runs.sqlite").string();
  const auto r = shell("RANK=0 WORLD_SIZE=4 MASTER_ADDR=127.0.0.1 MASTER_PORT=29999 " +
                       cli("run " + write_plan(dir, "plan", 2, 0, false, 4) + " --db " + db));
  EXPECT_EQ(r.code, 2) << r.out;
  const std::string expect = "parallel.dp = 2: the plan needs dp*tp*pp*cp = 2 ranks but the environment says WORLD_SIZE = 4";
  EXPECT_NE(r.out.find(expect), std::string::npos) << r.out;
  expect_failed_run(db, expect);
}

TEST(RunErrors, UnsupportedParallelismNamesTheField) {
  const fs::path dir = test_dir();
  const auto r = shell(cli("run " + write_plan(dir, "plan", 2, 0, false, 4) +
                                " --set parallel.cp=2 --set cluster.gpus=4 --db ''"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("parallel.cp = 2: context and expert parallelism are not implemented in the executor"),
            std::string::npos)
      << r.out;
}

TEST(RunErrors, TiedEmbeddingsOnTwoStagesWithZero2AreRefusedNamingTheField) {
  // The head's stage keeps a copy of the tied table, summed whole with the embedding's gradient: ZeRO-2
  // would shard the two differently.
  const fs::path dir = test_dir();
  const auto r = shell(cli("run " + write_plan(dir, "plan", 1, 2, false, 4, 32, true, true) +
                           " --set parallel.pp=2 --set cluster.gpus=2 --db ''"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("model.tied_embeddings = true: tied embeddings with the head on another pipeline stage than "
                       "the embedding keep a copy of the table there, and parallel.zero = 2 shards it differently"),
            std::string::npos)
      << r.out;
}

// A plan refused before any worker starts (here: what the executor does not implement) is still a
// failed run in the store, with the plan as given and the message.
TEST(RunErrors, ARefusedPlanIsAFailedRunInTheStore) {
  const fs::path dir = test_dir();
  const std::string db = (dir / "runs.sqlite").string();
  const auto r = shell(cli("run " + write_plan(dir, "plan", 2, 0, false, 4) +
                           " --set parallel.cp=2 --set cluster.gpus=4 --db " + db));
  EXPECT_EQ(r.code, 2) << r.out;
  expect_failed_run(db, "parallel.cp = 2: context and expert parallelism are not implemented");
  EXPECT_NE(Store(db).runs().back().run.plan_json.find("\"parallel\""), std::string::npos);
}

TEST(RunErrors, WithoutTheWorkerBinaryRunSaysSo) {
  const fs::path dir = test_dir();
  const auto r = shell("PARAPLAN_WORKER=" + (dir / "missing-worker").string() + " " +
                       cli("run " + write_plan(dir, "plan", 1, 0, false, 2) + " --db ''"));
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.out.find("the executor is not built"), std::string::npos) << r.out;
}

TEST(RunErrors, AKilledRankStopsTheOthers) {
  // Start a long run, kill rank 1 once training is under way: the launcher must stop rank 0 and report.
  const fs::path dir = test_dir();
  const std::string db = (dir / "runs.sqlite").string();
  const std::string plan = write_plan(dir, "plan", 2, 0, false, 4);
  const std::string out = (dir / "launcher.log").string();
  std::vector<std::string> args{PARAPLAN_BIN, "run", plan, "--db", db, "--steps", "1000000", "--threads", "1"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t launcher = -1;
  ASSERT_EQ(posix_spawn(&launcher, PARAPLAN_BIN, &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  // The launcher's children, and which rank each is (from its environment).
  auto rank_pids = [&] {
    std::map<int, pid_t> out_map;
    for (const auto& e : fs::directory_iterator("/proc")) {
      const std::string name = e.path().filename();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream stat(e.path() / "stat");
      std::string pid, comm, state;
      pid_t ppid = 0;
      stat >> pid >> comm >> state >> ppid;
      if (ppid != launcher) continue;
      std::ifstream env(e.path() / "environ");
      std::string var;
      while (std::getline(env, var, '\0'))
        if (var.rfind("RANK=", 0) == 0) out_map[std::stoi(var.substr(5))] = std::stoi(name);
    }
    return out_map;
  };
  std::map<int, pid_t> ranks;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {  // until both ranks exist and rank 1 has logged a step
    ranks = rank_pids();
    bool stepped = false;
    if (ranks.size() == 2 && fs::exists(db)) stepped = !Store(db).steps(1).empty();
    if (stepped || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(ranks.size(), 2u);
  kill(ranks.at(1), SIGKILL);
  int status = 0;
  const auto t0 = std::chrono::steady_clock::now();
  while (waitpid(launcher, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(30)) {
      kill(launcher, SIGKILL);
      FAIL() << "the launcher did not stop within 30 s after rank 1 died";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
  EXPECT_FALSE(fs::exists("/proc/" + std::to_string(ranks.at(0)) + "/stat")) << "rank 0 outlived the run";
  std::ifstream log(out);
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("rank 1: killed by signal 9"), std::string::npos) << text;
  expect_failed_run(db, "rank 1: killed by signal 9");
}

TEST(Runs, AHuggingFaceDirectoryInThePlanStartsFromItsWeights) {
  // Train, save, then name the saved config.json as the plan's model: the worker loads the weights
  // beside it, so the first step of the second run (the same batch as the first run's first step)
  // starts from a lower loss.
  const fs::path dir = test_dir();
  const std::string plan = write_plan(dir, "plan", 1, 0, false, 2);
  const std::string db = (dir / "runs.sqlite").string();
  ASSERT_EQ(shell(cli("run " + plan + " --db " + db + " --steps 5 --lr 0.01 --save " + (dir / "ckpt").string())).code, 0);
  nlohmann::json doc = nlohmann::json::parse(std::ifstream(plan));
  doc["model"] = {{"hf_config", (dir / "ckpt" / "config.json").string()}};
  std::ofstream(dir / "from-ckpt.json") << doc.dump();
  const auto r = shell(cli("run " + (dir / "from-ckpt.json").string() + " --db " + db + " --steps 1"));
  ASSERT_EQ(r.code, 0) << r.out;
  Store store(db);
  EXPECT_LT(store.steps(2).at(0).loss, store.steps(1).at(0).loss - 0.05);
}

// `paraplan demo` end to end: the workers, the run store, the table, bad input (issue 15).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "../cli/run_paraplan.hpp"
#include "paraplan/store.hpp"

namespace fs = std::filesystem;
using namespace paraplan::planner;

namespace {

bool have_fashion_mnist() { return fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"); }

std::string temp_db(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("paraplan-demo-" + std::to_string(getpid()) + "-" + name);
  fs::remove(p);
  return p.string();
}

}  // namespace

// The chapter's DDP claim: data parallelism changes who computes, not what is computed. With the same
// global batches, 2 and 4 workers take the single process's steps: the losses agree to fp32 rounding
// (1e-5) at every one of 30 steps. (Over hundreds of steps the rounding differences of the summed
// gradients grow through Adam; docs/teaching.md shows by how much.)
TEST(DemoLenet, DataParallelLossesEqualTheSingleProcess) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "the Debian package dataset-fashion-mnist is not installed";
  const std::string db = temp_db("lenet.sqlite");
  const auto r = clitest::run("demo ddp-lenet --workers 1,2,4 --epochs 1 --train-samples 1920 --test-samples 500 "
                              "--log-every 1 --db " + db);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("workers  time/epoch (s)  samples/s  speed-up (×)  communication (%)  test accuracy (%)"),
            std::string::npos) << r.out;
  Store s(db);
  const auto runs = s.runs();
  ASSERT_EQ(runs.size(), 3u);
  std::map<int, std::vector<StepRecord>> steps;
  for (const auto& run : runs) {
    EXPECT_EQ(run.status, RunStatus::succeeded) << run.error;
    steps[run.run.world_size] = s.steps(run.id);
    ASSERT_EQ(steps[run.run.world_size].size(), 30u) << "1920 images / 64 per step";
    const auto m = s.metrics(run.id);
    ASSERT_FALSE(m.empty());
  }
  for (int w : {2, 4})
    for (size_t i = 0; i < 30; ++i) {
      EXPECT_EQ(steps[w][i].step, steps[1][i].step);
      EXPECT_NEAR(steps[w][i].loss, steps[1][i].loss, 1e-5) << w << " workers, step " << i + 1;
    }
  // `paraplan runs --id` lists the run's metrics with their units.
  const auto shown = clitest::run("runs --db " + db + " --id " + std::to_string(runs[0].id));
  ASSERT_EQ(shown.code, 0) << shown.out;
  EXPECT_NE(shown.out.find("test_accuracy"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("fraction"), std::string::npos) << shown.out;
  // The loss fell: ln 10 = 2.303 nats at the start (uniform over 10 classes).
  EXPECT_NEAR(steps[1][0].loss, std::log(10.0), 0.1);
  EXPECT_LT(steps[1][29].loss, 1.5);
}

TEST(DemoLenet, BadInputNamesTheOption) {
  auto r = clitest::run("demo ddp-lenet --workers 3 --db ''");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("--global-batch = 64: must be divisible by every worker count"), std::string::npos) << r.out;
  r = clitest::run("demo ddp-lenet --workers 1 --epochs 1 --data /nonexistent --db ''");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("/nonexistent/train-images-idx3-ubyte.gz: no such file"), std::string::npos) << r.out;
}

// Exercise 2, quick: a 0.13 M-parameter model and a few steps (its accuracy means nothing here). What
// is checked: every variant's trainable parameters, counted by the executor, equal the planner's and
// the count by hand, and each phase is a stored run with its measurements.
TEST(DemoLora, TrainableCountsEqualThePlannersAndTheHandCount) {
  if (!fs::exists("/usr/share/games/fortunes/fortunes")) GTEST_SKIP() << "the Debian package fortunes is not installed";
  const std::string db = temp_db("lora.sqlite");
  const fs::path work = fs::temp_directory_path() / ("paraplan-demo-lora-" + std::to_string(getpid()));
  const auto r = clitest::run("demo lora-ranks --quick --pretrain-steps 4 --finetune-steps 3 --eval-problems 20 "
                              "--threads 1 --work-dir " + work.string() + " --db " + db);
  ASSERT_EQ(r.code, 0) << r.out;
  Store s(db);
  const auto runs = s.runs();
  ASSERT_EQ(runs.size(), 5u);  // pretraining, full fine-tuning, r = 4, 8, 16
  // The quick model: 2 layers, hidden 64, 4 heads of 16, 2 kv heads, MLP 176, vocabulary 257.
  // Full: embedding 257*64 + 2 x (norms 2*64 + q 64*64 + k, v 2*64*32 + o 64*64 + MLP 3*64*176) + final
  // norm 64 + head 257*64 = 16,448 + 2 x 46,208 + 64 + 16,448 = 125,376.
  // LoRA on q (64 -> 64) and v (64 -> 32): r(64 + 64) + r(64 + 32) = 224 r per layer, 448 r in all.
  const std::map<std::string, double> want{{"demo lora-ranks: pretrain", 125376},
                                           {"demo lora-ranks: full fine-tuning", 125376},
                                           {"demo lora-ranks: LoRA r=4", 1792},
                                           {"demo lora-ranks: LoRA r=8", 3584},
                                           {"demo lora-ranks: LoRA r=16", 7168}};
  for (const auto& run : runs) {
    SCOPED_TRACE(run.run.name);
    EXPECT_EQ(run.status, RunStatus::succeeded) << run.error;
    std::map<std::string, double> m;
    for (const auto& x : s.metrics(run.id)) m[x.name] = x.value;
    ASSERT_TRUE(want.count(run.run.name));
    EXPECT_EQ(m["trainable_params"], want.at(run.run.name));
    EXPECT_EQ(m["trainable_params_planner"], want.at(run.run.name));
    EXPECT_EQ(s.steps(run.id).size(), run.run.name.find("pretrain") != std::string::npos ? 4u : 3u);
    // The counting allocator's peak and the planner's prediction for the same plan (executor profile).
    const auto mem = s.memory(run.id);
    ASSERT_EQ(mem.size(), 1u);
    EXPECT_GT(mem[0].measured_bytes, 0);
    EXPECT_NEAR(mem[0].measured_bytes, mem[0].predicted_bytes.value_or(0), 0.01 * mem[0].measured_bytes);
  }
  EXPECT_NE(r.out.find("LoRA r=16"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("planner's count"), std::string::npos) << r.out;
}

TEST(DemoTour, PrintsEveryStepWithItsFormulaAndRefusesAnUnknownModel) {
  auto r = clitest::run("demo memory-tour");
  ASSERT_EQ(r.code, 0) << r.out;
  for (const char* title : {"1. Full fine-tuning on one GPU", "7. ZeRO-3 / FSDP", "10. Recompute"})
    EXPECT_NE(r.out.find(title), std::string::npos) << title;
  // ZeRO-2 at dp = 8: 2 + 16/8 = 4 B x 8,030,261,248 = 29.92 GiB (Rajbhandari et al. 2020, Figure 1).
  EXPECT_NE(r.out.find("4.000 B x 8,030,261,248 = 29.92 GiB"), std::string::npos) << r.out;
  r = clitest::run("demo memory-tour --model no-such-model");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--model = no-such-model"), std::string::npos) << r.out;
}

// Training checkpoints end to end through `paraplan run` (--checkpoint-every, --checkpoint-dir,
// --resume): a run interrupted and resumed from a checkpoint trains exactly the steps an uninterrupted
// run trains — on CPU in fp32 the losses after the checkpoint are bit-identical, compared as doubles,
// because the checkpoint holds the whole training state (weights, AdamW moments and step count, each
// rank its ZeRO shard) and the data a step reads depends only on the seed and the step number. A
// checkpoint that is corrupt, truncated or from another run is refused naming the file and what differs.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "paraplan/exec/train_checkpoint.hpp"
#include "paraplan/store.hpp"
#include "process_util.hpp"
#include "run_util.hpp"

using namespace paraplan::planner;
using paraplan::test::cli;
using paraplan::test::expect_failed_run;
using paraplan::test::shell;
using paraplan::test::test_dir;
using paraplan::test::write_plan;
namespace fs = std::filesystem;

namespace {

// --threads 1: a sum split over threads would add in another order.
const std::string kCommon = " --threads 1 --lr 0.01 ";

// Loss of each step of a run (rank 0's row; every rank records the same all-reduced value).
std::map<int, double> losses(const std::string& db, int64_t run) {
  std::map<int, double> out;
  for (const StepRecord& s : Store(db).steps(run))
    if (s.rank == 0) out[s.step] = s.loss;
  return out;
}

// The steps of `run` equal those of `reference` exactly, for every step in [first, last].
void expect_same_losses(const std::map<int, double>& run, const std::map<int, double>& reference, int first, int last) {
  for (int step = first; step <= last; ++step) {
    ASSERT_TRUE(run.count(step)) << "step " << step << " is missing";
    ASSERT_TRUE(reference.count(step)) << "step " << step << " is missing from the reference";
    EXPECT_EQ(run.at(step), reference.at(step)) << "step " << step;
  }
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct ResumeCase {
  const char* name;
  int zero;
  bool lora;
};

void PrintTo(const ResumeCase& c, std::ostream* os) { *os << c.name; }

class Resume : public ::testing::TestWithParam<ResumeCase> {};

}  // namespace

TEST_P(Resume, LossesAfterTheCheckpointAreThoseOfAnUninterruptedRun) {
  const ResumeCase c = GetParam();
  const fs::path dir = test_dir();
  const std::string plan = write_plan(dir, "plan", 2, c.zero, c.lora, 8);
  const std::string db = (dir / "runs.sqlite").string(), ckpt = (dir / "ckpt").string();
  // Run 1: 7 steps at once. Run 2: 4 steps, a checkpoint every 2. Run 3: resumed from the latest
  // checkpoint (step 4) to step 7, writing on every 2 steps into the same directory.
  auto r = shell(cli("run " + plan + " --db " + db + kCommon + "--steps 7"));
  ASSERT_EQ(r.code, 0) << r.out;
  r = shell(cli("run " + plan + " --db " + db + kCommon + "--steps 4 --checkpoint-every 2 --checkpoint-dir " + ckpt));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("checkpoint of step 4 written to " + ckpt + "/step-00000004"), std::string::npos) << r.out;
  r = shell(cli("run " + plan + " --db " + db + kCommon + "--steps 7 --checkpoint-every 2 --resume " + ckpt));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("resumed from " + ckpt + "/step-00000004 after step 4"), std::string::npos) << r.out;

  const auto uninterrupted = losses(db, 1), first = losses(db, 2), resumed = losses(db, 3);
  EXPECT_EQ(first.size(), 4u);
  EXPECT_EQ(resumed.size(), 3u);  // steps 5, 6, 7 only
  EXPECT_EQ(resumed.begin()->first, 5);
  expect_same_losses(first, uninterrupted, 1, 4);
  expect_same_losses(resumed, uninterrupted, 5, 7);
  EXPECT_LT(uninterrupted.at(7), uninterrupted.at(1)) << "the run did not learn";
  for (const StepRecord& s : Store(db).steps(3)) EXPECT_EQ(s.loss, uninterrupted.at(s.step)) << "rank " << s.rank;
  // Steps 2 and 4 from the first run, 6 from the resumed one; nothing half-written left behind.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(ckpt)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"step-00000002", "step-00000004", "step-00000006"}));
  for (const std::string& n : names) {
    const auto idx = paraplan::exec::read_index((fs::path(ckpt) / n / "index.json").string());
    EXPECT_EQ(idx.world_size, 2);
    EXPECT_EQ(idx.files.size(), 2u);
    for (const auto& f : idx.files) paraplan::exec::verify_checkpoint_file((fs::path(ckpt) / n).string(), f);
  }
}

INSTANTIATE_TEST_SUITE_P(Plans, Resume,
                         ::testing::Values(ResumeCase{"dp2", 0, false}, ResumeCase{"dp2_zero1", 1, false},
                                           ResumeCase{"dp2_zero2", 2, false}, ResumeCase{"dp2_zero3", 3, false},
                                           ResumeCase{"dp2_lora", 0, true}, ResumeCase{"dp2_zero3_lora", 3, true}),
                         [](const auto& info) { return std::string(info.param.name); });

namespace {

// A dp 2, ZeRO-1 run of 2 steps with a checkpoint at step 2, in dir/ckpt; returns the plan file.
std::string checkpointed_run(const fs::path& dir) {
  const std::string plan = write_plan(dir, "plan", 2, 1, false, 8);
  const auto r = shell(cli("run " + plan + " --db ''" + kCommon + "--steps 2 --checkpoint-every 2 --checkpoint-dir " +
                           (dir / "ckpt").string()));
  EXPECT_EQ(r.code, 0) << r.out;
  return plan;
}

}  // namespace

TEST(ResumeErrors, ACorruptOrTruncatedFileIsNamed) {
  const fs::path dir = test_dir();
  const std::string plan = checkpointed_run(dir);
  const fs::path step = dir / "ckpt" / "step-00000002";
  const std::string db = (dir / "runs.sqlite").string();
  auto resume = [&](const fs::path& from) {
    return shell(cli("run " + plan + " --db " + db + kCommon + "--steps 4 --resume " + from.string()));
  };
  {  // one bit flipped in rank 1's file
    fs::copy(dir / "ckpt", dir / "flipped", fs::copy_options::recursive);
    const fs::path f = dir / "flipped" / "step-00000002" / "rank-00001.safetensors";
    std::fstream io(f, std::ios::in | std::ios::out | std::ios::binary);
    io.seekg(5000);
    const char b = static_cast<char>(io.get());
    io.seekp(5000);
    io.put(static_cast<char>(b ^ 0x10));
    io.close();
    const auto r = resume(dir / "flipped");
    EXPECT_EQ(r.code, 1) << r.out;
    const std::string expect = f.string() + ": CRC-32 ";
    EXPECT_NE(r.out.find(expect), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(", but index.json records "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(": the file is corrupt"), std::string::npos) << r.out;
    expect_failed_run(db, expect);
  }
  {  // rank 0's file cut short
    fs::copy(dir / "ckpt", dir / "truncated", fs::copy_options::recursive);
    const fs::path f = dir / "truncated" / "step-00000002" / "rank-00000.safetensors";
    const auto size = fs::file_size(f);
    fs::resize_file(f, size - 1000);
    const auto r = resume(dir / "truncated");
    EXPECT_EQ(r.code, 1) << r.out;
    const std::string expect = f.string() + ": " + std::to_string(size - 1000) + " bytes, but index.json records " +
                               std::to_string(size) + " (the file is truncated)";
    EXPECT_NE(r.out.find(expect), std::string::npos) << r.out;
    expect_failed_run(db, expect);
  }
  {  // the index edited: still JSON, but its own CRC-32 no longer matches
    fs::copy(dir / "ckpt", dir / "index", fs::copy_options::recursive);
    const fs::path f = dir / "index" / "step-00000002" / "index.json";
    std::string text = read_text(f);
    const size_t at = text.find("\"step\": 2");
    ASSERT_NE(at, std::string::npos) << text;
    text.replace(at, 9, "\"step\": 3");
    std::ofstream(f) << text;
    const auto r = resume(dir / "index");
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find(f.string() + ": CRC-32 of the index is "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("the checkpoint index is corrupt"), std::string::npos) << r.out;
  }
  {  // the index cut in half: not JSON
    fs::copy(dir / "ckpt", dir / "half", fs::copy_options::recursive);
    const fs::path f = dir / "half" / "step-00000002" / "index.json";
    fs::resize_file(f, fs::file_size(f) / 2);
    const auto r = resume(dir / "half");
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find(f.string() + ": not a JSON object (the checkpoint index is corrupt or truncated)"),
              std::string::npos)
        << r.out;
  }
  {  // a directory with no complete checkpoint: one step directory without its index
    fs::create_directories(dir / "none" / "step-00000002");
    fs::copy(step / "rank-00000.safetensors", dir / "none" / "step-00000002");
    const auto r = resume(dir / "none");
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find((dir / "none").string() + ": no complete checkpoint: neither an index.json nor a step-N "
                                                   "directory holding one (1 step directories without index.json)"),
              std::string::npos)
        << r.out;
  }
}

TEST(ResumeErrors, AnotherRunsCheckpointIsRefusedNamingWhatDiffers) {
  const fs::path dir = test_dir();
  const std::string plan = checkpointed_run(dir);
  const std::string index = (dir / "ckpt" / "step-00000002" / "index.json").string();
  const std::string prefix = index + ": the checkpoint was written by another run: ";
  auto refused = [&](const std::string& plan_file, const std::string& extra, const std::string& what) {
    const std::string db = (dir / "runs.sqlite").string();
    const auto r = shell(cli("run " + plan_file + " --db " + db + " --steps 4 --threads 1 --resume " +
                             (dir / "ckpt").string() + " " + extra));
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find(prefix), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(what), std::string::npos) << r.out;
    expect_failed_run(db, what);
  };
  // Another world size (and with it dp and the global batch of 2 sequences per micro-batch and rank).
  refused(write_plan(dir, "dp4", 4, 1, false, 16), "--lr 0.01",
          "world size: 2 ranks in the checkpoint, 4 in this run; parallel.dp: 2 in the checkpoint, 4 in this run; "
          "training.global_batch: 8 in the checkpoint, 16 in this run. Resume with the plan, number of ranks and "
          "options it was written with");
  refused(plan, "--lr 0.01 --set parallel.zero=2", "parallel.zero: 1 in the checkpoint, 2 in this run.");
  refused(plan, "--lr 0.01 --set training.seq_len=16", "training.seq_len: 32 in the checkpoint, 16 in this run.");
  refused(write_plan(dir, "lora", 2, 1, true, 8), "--lr 0.01",
          "training.lora: (none) in the checkpoint, {\"alpha\":8.0,");
  refused(plan, "--lr 0.001", "--lr: 0.01 in the checkpoint, 0.001 in this run.");
  // The seed orders the data (and draws the built-in corpus: its --data fingerprint differs too).
  refused(plan, "--lr 0.01 --seed 7", "--seed: 0 in the checkpoint, 7 in this run.");
}

TEST(ResumeErrors, OptionRulesAreCheckedBeforeAnyWorkerStarts) {
  const fs::path dir = test_dir();
  const std::string plan = checkpointed_run(dir);
  auto run = [&](const std::string& args) { return shell(cli("run " + plan + " --db '' --threads 1 " + args)); };
  auto r = run("--lr 0.01 --steps 2 --resume " + (dir / "ckpt").string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--steps = 2: the checkpoint " + (dir / "ckpt" / "step-00000002").string() +
                       " is at step 2 already; ask for more steps to train on from it"),
            std::string::npos)
      << r.out;
  r = run("--steps 2 --checkpoint-every 1");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--checkpoint-every = 1: needs --checkpoint-dir DIR (or --resume DIR, whose checkpoints it "
                       "then continues)"),
            std::string::npos)
      << r.out;
  r = run("--steps 2 --checkpoint-dir " + (dir / "x").string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--checkpoint-dir = " + (dir / "x").string() + ": needs --checkpoint-every N"),
            std::string::npos)
      << r.out;
  r = run("--steps 4 --fake-rank 1 --resume " + (dir / "ckpt").string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--fake-rank = 1: a fake rank's numbers are not meaningful: it neither writes nor resumes "
                       "checkpoints"),
            std::string::npos)
      << r.out;
  r = run("--steps 4 --resume " + (dir / "missing").string());
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find((dir / "missing").string() + ": no such checkpoint directory"), std::string::npos) << r.out;
}

TEST(ResumeErrors, TheFrozenBaseMustBeTheOneItWasTrainedOn) {
  // LoRA keeps its base frozen and out of the checkpoint; a resumed run loads it as the first run did.
  // Here the first run's base is the seed's initialisation, the resumed one's other weights (--load).
  const fs::path dir = test_dir();
  const std::string full = write_plan(dir, "full", 1, 0, false, 4), lora = write_plan(dir, "lora", 2, 0, true, 8);
  auto r = shell(cli("run " + full + " --db ''" + kCommon + "--steps 1 --save " + (dir / "other-base").string()));
  ASSERT_EQ(r.code, 0) << r.out;
  r = shell(cli("run " + lora + " --db ''" + kCommon + "--steps 2 --checkpoint-every 2 --checkpoint-dir " +
                (dir / "ckpt").string()));
  ASSERT_EQ(r.code, 0) << r.out;
  r = shell(cli("run " + lora + " --db ''" + kCommon + "--steps 3 --resume " + (dir / "ckpt").string() + " --load " +
                (dir / "other-base").string()));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find((dir / "ckpt" / "step-00000002" / "rank-0000").string()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(".safetensors: the frozen base weights of this rank have CRC-32 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("start from the same base weights (--load, model.hf_config) as that run"), std::string::npos)
      << r.out;
}

// A run killed with SIGKILL (launcher and workers at once, as a lost node or the OOM killer would) at a
// random moment — during a step, or while writing a checkpoint — resumes from its last complete
// checkpoint, never from a half-written one, and the steps after it are those of an uninterrupted run.
TEST(ResumeAfterKill, ASigkilledRunResumesFromItsLastCompleteCheckpoint) {
  const fs::path dir = test_dir();
  const std::string plan = write_plan(dir, "plan", 2, 2, false, 8);
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("random kill moments from seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  struct Round {
    int resumed_from = 0;
    std::map<int, double> killed, resumed;
  };
  std::vector<Round> rounds;
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const fs::path ckpt = dir / ("ckpt" + std::to_string(round));
    const std::string db = (dir / ("run" + std::to_string(round) + ".sqlite")).string();
    paraplan::test::Child run = paraplan::test::Child::start(
        cli("run " + plan + " --db " + db + kCommon + "--timeout 100 --steps 1000000 --checkpoint-every 2 "
            "--checkpoint-dir " + ckpt.string()),
        dir / ("run" + std::to_string(round) + ".log"));
    // Until a complete checkpoint of step 2, 4 or 6 (by round) exists, then a random 0-40 ms more.
    const int wanted = 2 + 2 * round;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    int latest = 0;
    while (latest < wanted && std::chrono::steady_clock::now() < until) {
      try {
        latest = paraplan::exec::read_index(paraplan::exec::resolve_checkpoint(ckpt.string()) + "/index.json").step;
      } catch (const std::exception&) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_GE(latest, wanted) << run.output();
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 40)(rng)));
    kill(-run.pid, SIGKILL);
    EXPECT_EQ(run.wait(std::chrono::seconds(10)), -SIGKILL);

    // The checkpoint a resume takes is complete: its index reads and every file has its size and CRC.
    const std::string chosen = paraplan::exec::resolve_checkpoint(ckpt.string());
    const auto idx = paraplan::exec::read_index(chosen + "/index.json");
    for (const auto& f : idx.files) EXPECT_NO_THROW(paraplan::exec::verify_checkpoint_file(chosen, f));
    // What a writer without the partial directory and the index written last would leave: a newer step
    // directory with some of its files and no index. It must be passed over.
    const fs::path torn = ckpt / paraplan::exec::step_dir_name(idx.step + 2);
    if (!fs::exists(torn)) {
      fs::create_directories(torn);
      fs::copy(fs::path(chosen) / "rank-00000.safetensors", torn);
    }
    const auto r = shell(cli("run " + plan + " --db " + db + kCommon + "--steps " + std::to_string(idx.step + 2) +
                             " --resume " + ckpt.string()));
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("resumed from " + chosen + " after step " + std::to_string(idx.step)), std::string::npos)
        << r.out;
    Store store(db);
    ASSERT_EQ(store.runs().size(), 2u);
    EXPECT_NE(store.runs()[0].status, RunStatus::succeeded);  // killed: never finished
    rounds.push_back({idx.step, losses(db, 1), losses(db, 2)});
  }
  // One uninterrupted run as long as the longest resumed one.
  int last = 0;
  for (const Round& rd : rounds) last = std::max(last, rd.resumed_from + 2);
  const std::string db = (dir / "reference.sqlite").string();
  const auto r = shell(cli("run " + plan + " --db " + db + kCommon + "--steps " + std::to_string(last)));
  ASSERT_EQ(r.code, 0) << r.out;
  const auto reference = losses(db, 1);
  for (const Round& rd : rounds) {
    SCOPED_TRACE("resumed from step " + std::to_string(rd.resumed_from));
    EXPECT_EQ(rd.resumed.size(), 2u);
    expect_same_losses(rd.resumed, reference, rd.resumed_from + 1, rd.resumed_from + 2);
    // The killed run itself, up to where it got, was an uninterrupted run too.
    for (const auto& [step, loss] : rd.killed)
      if (step <= last) EXPECT_EQ(loss, reference.at(step)) << "killed run, step " << step;
  }
}

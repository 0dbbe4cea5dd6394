// Training checkpoints on disk without LibTorch: CRC-32, index.json, choosing the checkpoint to resume
// from, refusing another run's, publishing a step directory only once it is complete, and the rules
// between the checkpoint options.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "paraplan/error.hpp"
#include "paraplan/exec/crc32.hpp"
#include "paraplan/exec/run_options.hpp"
#include "paraplan/exec/safetensors.hpp"
#include "paraplan/exec/train_checkpoint.hpp"
#include "../test_dirs.hpp"

using namespace paraplan::exec;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path fresh_dir(const std::string& name) { return paraplan::testing::fresh_dir("paraplan-ckpt", name); }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const FormatError& e) {
    return e.what();
  }
  return "(no error)";
}

// A step directory with two rank files of the given contents and its index.
CheckpointIndex write_step(const fs::path& root, int step, const std::string& a, const std::string& b) {
  const fs::path dir = root / step_dir_name(step);
  fs::create_directories(dir);
  CheckpointIndex idx;
  idx.step = step;
  idx.world_size = 2;
  idx.trained_with = {{"parallel.zero", 1}, {"--lr", 0.01}};
  idx.plan = {{"model", "tiny-llama"}};
  int rank = 0;
  for (const std::string& text : {a, b}) {
    std::ofstream(dir / rank_file_name(rank)) << text;
    idx.files.push_back({rank_file_name(rank), rank, text.size(), crc32(text.data(), text.size())});
    ++rank;
  }
  std::ofstream(dir / "index.json") << index_to_json(idx).dump(2);
  return idx;
}

}  // namespace

TEST(Crc32, CheckValueAndChaining) {
  // The catalogue check value of CRC-32/ISO-HDLC (zlib, PNG): "123456789" -> 0xCBF43926.
  EXPECT_EQ(crc32("123456789", 9), 0xCBF43926u);
  EXPECT_EQ(crc32("", 0), 0u);
  EXPECT_EQ(crc32("6789", 4, crc32("12345", 5)), 0xCBF43926u);  // continued over two pieces
  EXPECT_EQ(crc32_hex(0xCBF43926u), "cbf43926");
  const fs::path d = fresh_dir("crc");
  std::ofstream(d / "f") << "123456789";
  EXPECT_EQ(file_crc32((d / "f").string()), 0xCBF43926u);
}

TEST(TrainCheckpoint, NamesSortAsTheirSteps) {
  EXPECT_EQ(step_dir_name(10), "step-00000010");
  EXPECT_EQ(partial_dir_name(10), ".step-00000010.partial");
  EXPECT_EQ(rank_file_name(3), "rank-00003.safetensors");
}

TEST(TrainCheckpoint, IndexRoundTripsAndKnowsItsOwnChecksum) {
  const fs::path root = fresh_dir("index");
  const CheckpointIndex w = write_step(root, 4, "rank zero", "rank one!");
  const std::string path = (root / step_dir_name(4) / "index.json").string();
  const CheckpointIndex r = read_index(path);
  EXPECT_EQ(r.step, 4);
  EXPECT_EQ(r.world_size, 2);
  EXPECT_EQ(r.trained_with, w.trained_with);
  ASSERT_EQ(r.files.size(), 2u);
  EXPECT_EQ(r.files[1].name, "rank-00001.safetensors");
  EXPECT_EQ(r.files[1].bytes, 9u);
  EXPECT_EQ(r.files[1].crc32, crc32("rank one!", 9));
  // A field changed by hand: still JSON, but no longer the content its CRC-32 was computed over.
  json j = json::parse(std::ifstream(path));
  j["files"][0]["bytes"] = 10;
  std::ofstream(path) << j.dump(2);
  EXPECT_NE(error_of([&] { read_index(path); }).find(path + ": CRC-32 of the index is "), std::string::npos);
}

TEST(TrainCheckpoint, IndexErrorsNameTheFileAndTheField) {
  const fs::path d = fresh_dir("bad-index");
  const std::string path = (d / "index.json").string();
  auto with = [&](const json& j) {
    std::ofstream(path) << j.dump();
    return error_of([&] { read_index(path); });
  };
  EXPECT_EQ(with(json::array()), path + ": not a JSON object (the checkpoint index is corrupt or truncated)");
  EXPECT_EQ(with({{"format", "something else"}}), path + ": \"format\" = \"something else\": not a paraplan training checkpoint");
  EXPECT_EQ(with({{"format", kCheckpointFormat}, {"version", 2}}),
            path + ": \"version\" = 2: this paraplan reads version 1 (use the paraplan that wrote it)");
  EXPECT_EQ(with({{"format", kCheckpointFormat}, {"version", 1}}), path + ": \"index_crc32\" is missing");
  EXPECT_EQ(error_of([&] { read_index((d / "absent.json").string()); }).rfind((d / "absent.json").string() + ": cannot open", 0), 0u);
}

TEST(TrainCheckpoint, ResumeTakesTheHighestCompleteStep) {
  const fs::path root = fresh_dir("resolve");
  write_step(root, 2, "a", "b");
  write_step(root, 10, "a", "b");  // the highest, wherever the directory listing puts it
  write_step(root, 4, "a", "b");
  fs::create_directories(root / step_dir_name(12));  // begun, never completed: no index
  fs::create_directories(root / partial_dir_name(14));
  std::ofstream(root / partial_dir_name(14) / "index.json") << "{}";  // hidden: never taken
  EXPECT_EQ(resolve_checkpoint(root.string()), (root / step_dir_name(10)).string());
  EXPECT_EQ(resolve_checkpoint((root / step_dir_name(4)).string()), (root / step_dir_name(4)).string());
  const fs::path empty = fresh_dir("resolve-empty");
  fs::create_directories(empty / step_dir_name(2));
  EXPECT_EQ(error_of([&] { resolve_checkpoint(empty.string()); }),
            empty.string() + ": no complete checkpoint: neither an index.json nor a step-N directory holding one "
                             "(1 step directories without index.json)");
  EXPECT_EQ(error_of([&] { resolve_checkpoint((empty / "nope").string()); }),
            (empty / "nope").string() + ": no such checkpoint directory");
}

TEST(TrainCheckpoint, AnotherRunIsRefusedNamingEachDifference) {
  CheckpointIndex idx;
  idx.world_size = 2;
  idx.trained_with = {{"parallel.zero", 1}, {"--lr", 0.01}, {"training.lora", nullptr}};
  EXPECT_EQ(error_of([&] { check_trained_with(idx, idx.trained_with, 2, "I"); }), "(no error)");
  json ours = idx.trained_with;
  ours["parallel.zero"] = 3;
  ours["training.lora"] = {{"rank", 4}};
  EXPECT_EQ(error_of([&] { check_trained_with(idx, ours, 4, "I"); }),
            "I: the checkpoint was written by another run: world size: 2 ranks in the checkpoint, 4 in this run; "
            "parallel.zero: 1 in the checkpoint, 3 in this run; training.lora: (none) in the checkpoint, {\"rank\":4} "
            "in this run. Resume with the plan, number of ranks and options it was written with");
}

TEST(TrainCheckpoint, AFileThatDiffersFromTheIndexIsNamed) {
  const fs::path root = fresh_dir("verify");
  const CheckpointIndex idx = write_step(root, 2, "0123456789", "abcdefghij");
  const std::string dir = (root / step_dir_name(2)).string();
  EXPECT_EQ(error_of([&] { verify_checkpoint_file(dir, idx.files[0]); }), "(no error)");
  std::ofstream(fs::path(dir) / "rank-00000.safetensors") << "0123456780";  // one byte changed
  EXPECT_EQ(error_of([&] { verify_checkpoint_file(dir, idx.files[0]); }),
            dir + "/rank-00000.safetensors: CRC-32 " + crc32_hex(crc32("0123456780", 10)) +
                ", but index.json records " + crc32_hex(crc32("0123456789", 10)) + ": the file is corrupt");
  fs::resize_file(fs::path(dir) / "rank-00001.safetensors", 4);
  EXPECT_EQ(error_of([&] { verify_checkpoint_file(dir, idx.files[1]); }),
            dir + "/rank-00001.safetensors: 4 bytes, but index.json records 10 (the file is truncated)");
  fs::remove(fs::path(dir) / "rank-00001.safetensors");
  EXPECT_EQ(error_of([&] { verify_checkpoint_file(dir, idx.files[1]); }).rfind(dir + "/rank-00001.safetensors: missing", 0), 0u);
}

TEST(TrainCheckpoint, PublishingRenamesAWholeDirectoryAndReplacesAnOlderOne) {
  const fs::path root = fresh_dir("publish");
  write_step(root, 6, "old0", "old1");  // a checkpoint of step 6 from an earlier attempt
  const fs::path partial = root / partial_dir_name(6);
  fs::create_directories(partial);
  CheckpointIndex idx;
  idx.step = 6;
  idx.world_size = 2;
  idx.trained_with = json::object();
  for (int r = 0; r < 2; ++r) {
    const std::string text = "new" + std::to_string(r);
    std::ofstream(partial / rank_file_name(r)) << text;
    idx.files.push_back({rank_file_name(r), r, text.size(), crc32(text.data(), text.size())});
  }
  std::ofstream(partial / "rank-00002.safetensors") << "a leftover of a 3-rank attempt";
  std::ofstream(partial / "rank-00000.safetensors.tmp") << "a leftover of a killed write";
  EXPECT_EQ(publish_checkpoint(root.string(), idx), (root / step_dir_name(6)).string());
  EXPECT_FALSE(fs::exists(partial));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(root)) names.push_back(e.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{step_dir_name(6)});  // no .old, no .partial
  names.clear();
  for (const auto& e : fs::directory_iterator(root / step_dir_name(6))) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"index.json", "rank-00000.safetensors", "rank-00001.safetensors"}));
  const CheckpointIndex back = read_index((root / step_dir_name(6) / "index.json").string());
  for (const auto& f : back.files) verify_checkpoint_file((root / step_dir_name(6)).string(), f);
}

TEST(TrainCheckpoint, DurableWritesLeaveNoTemporaryFile) {
  const fs::path d = fresh_dir("durable");
  write_file_durably((d / "x.json").string(), "{\"a\": 1}");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(d)) names.push_back(e.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"x.json"});
  const std::string err = error_of([&] { write_file_durably((d / "no-dir" / "x").string(), "x"); });
  EXPECT_EQ(err.rfind((d / "no-dir" / "x.tmp-").string(), 0), 0u) << err;
  EXPECT_NE(err.find(": cannot create: No such file or directory"), std::string::npos) << err;
}

TEST(TrainCheckpoint, CheckpointsGoToTheDirectoryOrOnIntoTheResumedOne) {
  RunOptions o;
  EXPECT_EQ(checkpoint_root(o), "");  // none written
  o.checkpoint_every = 10;
  o.checkpoint_dir = "out/ckpt";
  EXPECT_EQ(checkpoint_root(o), "out/ckpt");
  o.checkpoint_dir.clear();
  const fs::path root = fresh_dir("root");
  write_step(root, 4, "a", "b");
  o.resume = root.string();
  EXPECT_EQ(checkpoint_root(o), root.string());
  o.resume = (root / step_dir_name(4)).string() + "/";  // one step directory: its checkpoint root
  EXPECT_EQ(checkpoint_root(o), root.string());
}

TEST(TrainCheckpoint, OptionRulesNameTheOption) {
  auto violations = [](const RunOptions& o) {
    try {
      check_run_options(o);
    } catch (const paraplan::planner::PlanError& e) {
      std::string all;
      for (const auto& v : e.violations()) all += v.to_string() + "\n";
      return all;
    }
    return std::string("(accepted)");
  };
  RunOptions o;
  EXPECT_EQ(violations(o), "(accepted)");
  o.checkpoint_dir = "ckpt";
  EXPECT_EQ(violations(o), "--checkpoint-dir = ckpt: needs --checkpoint-every N (how often to write)\n");
  o.checkpoint_every = 5;
  EXPECT_EQ(violations(o), "(accepted)");
  o.checkpoint_dir.clear();
  EXPECT_EQ(violations(o), "--checkpoint-every = 5: needs --checkpoint-dir DIR (or --resume DIR, whose checkpoints it "
                           "then continues)\n");
  o.resume = "ckpt";
  EXPECT_EQ(violations(o), "(accepted)");
  o.fake_rank = 1;
  EXPECT_EQ(violations(o), "--fake-rank = 1: a fake rank's numbers are not meaningful: it neither writes nor resumes "
                           "checkpoints\n");
}

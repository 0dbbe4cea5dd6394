#pragma once
// Training checkpoints on disk (`paraplan run --checkpoint-every N`, `--resume DIR`), without LibTorch.
//
// A checkpoint of step N is the directory ROOT/step-0000000N. It holds one safetensors file per rank,
// rank-0000R.safetensors, with what that rank owns of the training state, and index.json, written last,
// which lists every rank's file with its size and CRC-32, says what the checkpoint was trained with
// (model, training, parallel, world size, options), and carries a CRC-32 of its own content.
//
// Writing never leaves a half-written checkpoint under a step-N name: the ranks write into
// ROOT/.step-0000000N.partial (each file fsync'ed), rank 0 adds index.json there, and only then renames
// the directory to step-0000000N (fsync'ing ROOT). A run killed at any moment leaves either no step-N
// directory or a complete one; resuming from ROOT takes the highest complete step.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "paraplan/exec/layout.hpp"
#include "paraplan/plan.hpp"

namespace paraplan::exec {

struct CheckpointFile {
  std::string name;  // relative to the step directory
  int rank = 0;
  uint64_t bytes = 0;
  uint32_t crc32 = 0;
};

struct CheckpointIndex {
  int step = 0;                  // optimizer steps done when it was written
  int world_size = 0;
  nlohmann::json trained_with;   // flat object: "parallel.zero" -> 1, "--lr" -> 0.001, ...: must match to resume
  nlohmann::json plan;           // the plan as the run read it (plan_to_json), for people
  std::vector<CheckpointFile> files;
};

constexpr const char* kCheckpointFormat = "paraplan training checkpoint";
constexpr int kCheckpointVersion = 1;

// Everything a resumed run must share with the run that wrote the checkpoint for its losses to be
// those of an uninterrupted run: the model, the training and parallel settings that shape the state or
// the numbers, the optimizer's settings, the seed (the data order) and the data itself.
struct TrainedWith {
  planner::Plan plan;
  ModelExtras extras;
  double lr = 0, weight_decay = 0, beta1 = 0, beta2 = 0, eps = 0;
  uint64_t seed = 0;
  int64_t data_tokens = 0;
  uint32_t data_crc32 = 0;
};
// A flat object, one key per setting: "model.hidden", "training.global_batch", "parallel.zero", "--lr", ...
nlohmann::json trained_with_json(const TrainedWith& t);

std::string step_dir_name(int step);     // "step-00000010"
std::string partial_dir_name(int step);  // ".step-00000010.partial"
std::string rank_file_name(int rank);    // "rank-00003.safetensors"

// Durable writes: fsync a file, or a directory (so that a rename inside it survives a crash).
void sync_file(const std::string& path);
void sync_dir(const std::string& path);
// Writes `content` through a temporary file in the same directory: write, fsync, rename, fsync the directory.
void write_file_durably(const std::string& path, const std::string& content);

nlohmann::json index_to_json(const CheckpointIndex& index);  // with "index_crc32" over the rest
// Reads and checks index.json: JSON, format, version, its own CRC-32, every field. FormatError naming the
// file and the field at fault.
CheckpointIndex read_index(const std::string& path);

// The checkpoint directory `path` names: `path` itself when it holds an index.json, else the step-N
// directory inside it with the highest N that holds one. FormatError naming `path` when there is none.
std::string resolve_checkpoint(const std::string& path);

// FormatError naming the index and every field where the checkpoint and this run (`ours`, built like
// trained_with, and `world_size`) differ, with both values.
void check_trained_with(const CheckpointIndex& index, const nlohmann::json& ours, int world_size,
                        const std::string& index_path);
// The entry of `rank`; FormatError naming the index when it has none.
const CheckpointFile& file_of_rank(const CheckpointIndex& index, int rank, const std::string& index_path);
// FormatError naming the file when it is missing, or its size or CRC-32 differs from the index's.
void verify_checkpoint_file(const std::string& step_dir, const CheckpointFile& file);

// Rank 0, after every rank's file is in ROOT/.step-N.partial: removes anything else there (leftovers of
// an interrupted write), writes index.json durably, and renames the directory to ROOT/step-N (an older
// step-N is moved aside first and removed after). Returns the step directory.
std::string publish_checkpoint(const std::string& root, const CheckpointIndex& index);

}  // namespace paraplan::exec

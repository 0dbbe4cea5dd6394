#pragma once
// One rank's share of the training state as a safetensors file (rank-0000R.safetensors in a training
// checkpoint, paraplan/exec/train_checkpoint.hpp): for every engine unit U, what the rank owns of the
// trainable weights ("units.U.weights", compute dtype), the fp32 master weights ("units.U.master") and
// the AdamW moments ("units.U.exp_avg", "units.U.exp_avg_sq"); empty chunks are left out. The metadata
// holds the rank, the step, the optimizer's step count, and the CRC-32 of the frozen weights the rank
// holds (LoRA's base): those are not written, a resumed run loads them as the first run did and the
// CRC proves they are the same.
#include <cstdint>
#include <string>

#include "adamw.hpp"
#include "zero_engine.hpp"

namespace paraplan::exec {

// Writes the file (fsync'ed). Every rank calls it with its own path; no communication.
void write_rank_state(const std::string& path, ZeroEngine& engine, AdamW& optimizer, int rank, int step);
// Reads the file into the engine and the optimizer, then rebuilds what ranks replicate (a collective:
// every rank must call it). FormatError naming the file and the tensor or field at fault.
void read_rank_state(const std::string& path, ZeroEngine& engine, AdamW& optimizer, int rank, int step);

}  // namespace paraplan::exec

#pragma once
// Shared between the communicator backends (not installed).
#include <memory>

#include "paraplan/exec/communicator.hpp"

namespace paraplan::exec {

// A communicator that talks to no one: rank `rank` of `size`. With size 1 it is exact (a group of one).
std::unique_ptr<Communicator> make_fake_communicator(int rank, int size);

}  // namespace paraplan::exec

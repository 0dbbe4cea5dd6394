#pragma once
// Shared between the communicator backends (not installed).
#include <functional>
#include <memory>
#include <string>

#include "paraplan/exec/communicator.hpp"

namespace paraplan::exec {

// A communicator that talks to no one: rank `rank` of `size`. With size 1 it is exact (a group of one).
std::unique_ptr<Communicator> make_fake_communicator(int rank, int size);

// Fills groups.axis for this rank: every axis in the same order on every rank (group construction is
// collective), a group of one for size-1 axes, and the same communicator for groups whose members are
// another's. `make(a, name, index_in_group, size)` builds one group; `name` ("tp/4") is the same on
// every member and unique in the world.
using MakeGroup = std::function<std::unique_ptr<Communicator>(planner::Axis, const std::string&, int, int)>;
void build_axis_groups(ProcessGroups& groups, const MakeGroup& make);

}  // namespace paraplan::exec

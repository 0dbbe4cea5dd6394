#pragma once
// The CLI prints numbers through the planner's one formatter (paraplan/format.hpp).
#include "paraplan/format.hpp"

namespace paraplan::cli {

using namespace planner::text;  // count, gib, gib_unit, mib, percent, seconds, short_count

}  // namespace paraplan::cli

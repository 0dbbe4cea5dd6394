#pragma once
// The CLI prints numbers through the planner's one formatter (paraplan/format.hpp).
#include "paraplan/format.hpp"

namespace paraplan::cli {

using planner::text::count;
using planner::text::gib;
using planner::text::gib_unit;
using planner::text::mib;
using planner::text::percent;
using planner::text::seconds;
using planner::text::short_count;

}  // namespace paraplan::cli

#pragma once
// The pipeline schedules the simulator executes are the planner's (paraplan/pipeline_schedule.hpp):
// one definition, shared with the executor, which runs the same op lists.
#include "paraplan/pipeline_schedule.hpp"

namespace paraplan::sim {

using planner::make_schedule;
using planner::OpType;
using planner::Schedule;
using planner::ScheduleOp;
using planner::to_string;

}  // namespace paraplan::sim

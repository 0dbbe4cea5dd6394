#pragma once
// Parallel legality, in one place: which tp, cp, pp, ep, sequence parallelism, pipeline schedules and
// virtual stages a plan may use. Each rule is written once, as a check that adds a violation naming the
// field, the value and the rule; each generator enumerates the values whose checks pass. validate_plan
// reports the checks; the search, the GUI's option lists and the exports enumerate from the generators,
// so that what is offered is exactly what is accepted. (The same split as torchtitan's
// ParallelDims._validate and Calculon's get_all_tensor_parallelisms: the rule is a generator that every
// consumer asks.)
#include <cstdint>
#include <vector>

#include "paraplan/error.hpp"
#include "paraplan/plan.hpp"

namespace paraplan::planner {

// --- checks: one violation per broken rule ---

// dp*tp*pp*cp ranks make the cluster, in whole nodes once it spans more than one.
void check_world(const ParallelPlan& p, const ClusterSpec& c, Violations& e);
void check_cluster_size(const ClusterSpec& c, Violations& e);
// TP splits attention by (query and key/value) heads and the MLPs by columns (Megatron-LM).
void check_tp(const ModelSpec& m, int tp, Violations& e);
// Sequence parallelism shards the TP-replicated activations over tp (Korthikanti et al. 2022 §4.2.2).
void check_sequence_parallel(bool sp, int tp, int cp, int64_t seq_len, Violations& e);
// Causal context parallelism: 2*cp balanced chunks of the sequence, on flash kernels (Megatron-Core CP);
// not modelled under a sliding window shorter than the sequence.
void check_cp(const ModelSpec& m, const TrainingSpec& t, int cp, Violations& e);
// Expert parallelism takes its ranks from the data/context-parallel ones.
void check_ep(const ModelSpec& m, int ep, long long dp_cp, Violations& e);
// Every model chunk (pp * virtual_stages of them) needs a layer.
void check_pp(const ModelSpec& m, int pp, int virtual_stages, Violations& e);
// The pipeline schedule and its virtual stages; interleaving also needs the micro-batches per step
// (training.global_batch / (dp * micro_batch)) to be a multiple of pp.
void check_schedule(const ParallelPlan& p, const TrainingSpec& t, Violations& e);
void check_layer_split(const ParallelPlan& p, int layers, Violations& e);
// The global batch is whole micro-batches on every data-parallel rank.
void check_batch(const TrainingSpec& t, int dp, Violations& e);
// All of the above for one plan, in that order.
void check_parallel(const Plan& plan, Violations& e);

// --- generators: the values the checks accept ---

std::vector<int> divisors(long long n);  // ascending
std::vector<int> tp_degrees(const ModelSpec& m, long long ranks);    // divisors of ranks
std::vector<int> cp_degrees(const ModelSpec& m, const TrainingSpec& t, long long ranks);
std::vector<int> pp_degrees(const ModelSpec& m, long long ranks);
std::vector<int> ep_degrees(const ModelSpec& m, long long dp_cp);     // {1} for a dense model
bool sequence_parallel_allowed(int tp, int cp, int64_t seq_len);     // with tp > 1

struct ScheduleChoice {
  PipelineSchedule schedule;
  int virtual_stages;
};
// Valid (schedule, virtual stages) pairs for pp stages of a `layers`-layer model with `micro_batches`
// micro-batches per step, interleaving up to `max_virtual_stages`; in the order gpipe, 1f1b, zb-h1,
// zbv, interleaved v = 2, 3, ...
std::vector<ScheduleChoice> schedule_choices(int pp, int layers, long long micro_batches,
                                             int max_virtual_stages = 8);

}  // namespace paraplan::planner

#pragma once
// Exhaustive search over every valid way to split a training run over a cluster: dp, tp, pp, cp, ep,
// ZeRO stage, sequence parallelism, pipeline schedule and virtual stages, micro-batch, recompute and
// offload. Plans that do not fit are dropped; the rest are ranked, and the Pareto front of peak
// memory against step time is kept. Multi-threaded; the only pruning is provably safe (see search.cpp).
#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "paraplan/plan.hpp"

namespace paraplan::planner {

enum class SearchSort { throughput, memory, cost };

struct SearchOptions {
  int gpus = 0;   // 0: the base plan's cluster.gpus
  int top_k = 10;
  SearchSort sort = SearchSort::throughput;
  int threads = 0;  // 0: one per hardware thread
  int max_virtual_stages = 8;  // interleaved schedule: v = 2 .. this (and pp*v <= layers)
  bool vary_offload = true;
  bool vary_recompute = true;
  // Called now and then from worker threads with (tasks done, tasks total); may be empty.
  std::function<void(uint64_t, uint64_t)> progress;
  const std::atomic<bool>* cancel = nullptr;  // set to stop early; results so far are returned
};

struct Candidate {
  Plan plan;
  double step_s = 0, tokens_per_s = 0, mfu = 0;
  double peak_bytes = 0;
  double cost_per_million_tokens = 0;  // 0 when no price per GPU-hour is known
};

struct SearchResult {
  std::vector<Candidate> top;     // best top_k fitting plans by the sort key
  std::vector<Candidate> pareto;  // fitting plans no other plan beats on both peak memory and step time
  uint64_t evaluated = 0;         // plans whose memory (and, when fitting, time) was estimated
  uint64_t fitting = 0;
  uint64_t pruned = 0;            // skipped: larger micro-batches of a shape where nothing fit
  // Fitting plans that predict the same peak memory and step time as the same layout one ZeRO stage lower
  // (no group to shard over: dp x cp = 1), counted in `fitting` but listed once, at the lowest stage.
  uint64_t equivalent = 0;
  double seconds = 0;
  bool cancelled = false;
};

// Throws PlanError when the cluster itself is invalid (more than one node but not whole nodes), or when
// ranking by cost without a cluster.price_per_gpu_hour.
SearchResult search(const Plan& base, const SearchOptions& options);

}  // namespace paraplan::planner

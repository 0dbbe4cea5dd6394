// Parallel legality (parallel_rules.hpp): each rule once, as a check; the generators keep what passes.
#include "paraplan/parallel_rules.hpp"

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <string>

namespace paraplan::planner {

namespace {

std::string s(long long v) { return std::to_string(v); }

// True when `check` adds nothing for this candidate.
template <class Check>
bool passes(Check check) {
  Violations v;
  check(v);
  return v.empty();
}

}  // namespace

void check_cluster_size(const ClusterSpec& c, Violations& e) {
  if (c.gpus > c.gpus_per_node && c.gpus % c.gpus_per_node != 0)
    e.add("cluster.gpus", s(c.gpus), "must be a multiple of gpus_per_node (" + s(c.gpus_per_node) +
                                         ") when it spans more than one node");
}

void check_world(const ParallelPlan& p, const ClusterSpec& c, Violations& e) {
  // In double: each degree may be up to limits::kDegree, and their product would overflow 64 bits.
  const double world = static_cast<double>(p.dp) * p.tp * p.pp * p.cp;
  if (world != c.gpus) {
    char product[64];
    std::snprintf(product, sizeof product, "%.0f", world);
    e.add("cluster.gpus", s(c.gpus),
          "must equal dp*tp*pp*cp = " + s(p.dp) + "*" + s(p.tp) + "*" + s(p.pp) + "*" + s(p.cp) + " = " + product);
  }
  check_cluster_size(c, e);
}

void check_tp(const ModelSpec& m, int tp, Violations& e) {
  if (m.heads % tp != 0)
    e.add("parallel.tp", s(tp), "must divide model.heads (" + s(m.heads) + "): TP splits attention by heads");
  // TP splits key/value heads (Megatron num_query_groups); with fewer kv heads than tp each rank holds
  // one, replicated on tp / kv_heads ranks (vLLM QKVParallelLinear num_kv_head_replicas; Megatron-Core
  // itself asserts tp | num_query_groups), so tp must divide kv_heads or be a multiple of it.
  if (!m.mla && m.kv_heads % tp != 0 && tp % m.kv_heads != 0)
    e.add("parallel.tp", s(tp),
          "must divide model.kv_heads (" + s(m.kv_heads) + ") or be a multiple of it (key/value heads are split "
          "over tp, or replicated on tp / kv_heads ranks when there are fewer)");
  if (m.ffn_hidden % tp != 0) e.add("parallel.tp", s(tp), "must divide model.ffn_hidden (" + s(m.ffn_hidden) + ")");
  if (m.moe && m.moe->ffn_hidden % tp != 0)
    e.add("parallel.tp", s(tp), "must divide model.moe.ffn_hidden (" + s(m.moe->ffn_hidden) + ")");
}

void check_sequence_parallel(bool sp, int tp, int cp, int64_t seq_len, Violations& e) {
  if (!sp) return;
  if (tp == 1)
    e.add("parallel.sequence_parallel", "true", "requires tp > 1 (it shards the TP-replicated activations over tp)");
  if (seq_len / cp % tp != 0)
    e.add("training.seq_len", s(seq_len), "must be divisible by cp*tp (" + s(static_cast<long long>(cp) * tp) +
                                              ") with sequence parallelism");
}

void check_cp(const ModelSpec& m, const TrainingSpec& t, int cp, Violations& e) {
  if (cp == 1) return;
  if (t.seq_len % (2 * cp) != 0)
    e.add("parallel.cp", s(cp), "2*cp must divide training.seq_len (" + s(t.seq_len) +
                                    "): causal CP splits the sequence into 2*cp balanced chunks");
  if (m.sliding_window > 0 && m.sliding_window < t.seq_len)
    e.add("parallel.cp", s(cp), "must be 1 with a sliding window shorter than training.seq_len (model.sliding_window = " +
                                    s(m.sliding_window) + "): ring attention over a window is not modelled");
  if (!t.flash_attention)
    e.add("parallel.cp", s(cp), "requires training.flash_attention = true (ring attention runs on flash kernels)");
}

void check_ep(const ModelSpec& m, int ep, long long dp_cp, Violations& e) {
  if (ep > 1 && !m.moe) e.add("parallel.ep", s(ep), "requires a mixture-of-experts model (model.moe)");
  if (m.moe && m.moe->experts % ep != 0)
    e.add("parallel.ep", s(ep), "must divide model.moe.experts (" + s(m.moe->experts) + ")");
  if (ep > 1 && dp_cp % ep != 0)
    e.add("parallel.ep", s(ep), "must divide dp*cp (" + s(dp_cp) +
                                    "): expert-parallel ranks are taken from the data/context-parallel ranks");
}

void check_pp(const ModelSpec& m, int pp, int virtual_stages, Violations& e) {
  if (m.layers < static_cast<long long>(pp) * virtual_stages)
    e.add("parallel.pp", s(pp), "pp*virtual_stages (" + s(static_cast<long long>(pp) * virtual_stages) +
                                    ") must be <= model.layers (" + s(m.layers) + "): every model chunk needs a layer");
}

void check_schedule(const ParallelPlan& p, const TrainingSpec& t, Violations& e) {
  using PS = PipelineSchedule;
  const PS sched = p.pp_schedule;
  if (p.virtual_stages > 1 && sched != PS::interleaved && sched != PS::zbv)
    e.add("parallel.virtual_stages", s(p.virtual_stages),
          "must be 1 unless pp_schedule is interleaved or zbv (schedule is " + std::string(to_string(sched)) + ")");
  if ((sched == PS::interleaved || sched == PS::zb_h1 || sched == PS::zbv) && p.pp == 1)
    e.add("parallel.pp_schedule", to_string(sched), "needs pp > 1");
  if (sched == PS::interleaved && p.virtual_stages < 2)
    e.add("parallel.virtual_stages", s(p.virtual_stages), "must be >= 2 for the interleaved schedule (v = 1 is 1f1b)");
  if (sched == PS::zbv && p.virtual_stages != 2)
    e.add("parallel.virtual_stages", s(p.virtual_stages), "must be 2 for zbv (two chunks per stage in a V)");
  // Megatron-Core's interleaved schedule runs micro-batches in groups of pp (schedules.py asserts it).
  const long long per_step = static_cast<long long>(p.dp) * t.micro_batch;
  if (sched == PS::interleaved && p.pp > 1 && per_step > 0 && t.global_batch % per_step == 0 &&
      (t.global_batch / per_step) % p.pp != 0)
    e.add("training.global_batch", s(t.global_batch),
          "gives " + s(t.global_batch / per_step) + " micro-batches; the interleaved schedule needs a multiple of pp (" +
              s(p.pp) + ")");
}

void check_layer_split(const ParallelPlan& p, int layers, Violations& e) {
  if (p.layer_split.empty()) return;
  if (static_cast<int>(p.layer_split.size()) != p.chunks())
    e.add("parallel.layer_split", s(static_cast<long long>(p.layer_split.size())) + " entries",
          "must have pp*virtual_stages = " + s(p.chunks()) + " entries (layers per model chunk)");
  const long long sum = std::accumulate(p.layer_split.begin(), p.layer_split.end(), 0LL);
  if (sum != layers) e.add("parallel.layer_split", "sum " + s(sum), "must add up to model.layers (" + s(layers) + ")");
}

void check_batch(const TrainingSpec& t, int dp, Violations& e) {
  const long long per_step = static_cast<long long>(dp) * t.micro_batch;
  if (t.global_batch % per_step != 0)
    e.add("training.global_batch", s(t.global_batch),
          "must be divisible by dp*micro_batch = " + s(dp) + "*" + s(t.micro_batch) + " = " + s(per_step));
}

void check_parallel(const Plan& plan, Violations& e) {
  const ParallelPlan& p = plan.parallel;
  check_world(p, plan.cluster, e);
  check_tp(plan.model, p.tp, e);
  check_sequence_parallel(p.sequence_parallel, p.tp, p.cp, plan.training.seq_len, e);
  check_cp(plan.model, plan.training, p.cp, e);
  check_ep(plan.model, p.ep, static_cast<long long>(p.dp) * p.cp, e);
  check_pp(plan.model, p.pp, p.virtual_stages, e);
  check_schedule(p, plan.training, e);
  check_layer_split(p, plan.model.layers, e);
  check_batch(plan.training, p.dp, e);
}

std::vector<int> divisors(long long n) {
  std::vector<int> d;
  for (long long i = 1; i * i <= n; ++i)
    if (n % i == 0) {
      d.push_back(static_cast<int>(i));
      if (i * i != n) d.push_back(static_cast<int>(n / i));
    }
  std::sort(d.begin(), d.end());
  return d;
}

std::vector<int> tp_degrees(const ModelSpec& m, long long ranks) {
  std::vector<int> out;
  for (int tp : divisors(ranks))
    if (passes([&](Violations& v) { check_tp(m, tp, v); })) out.push_back(tp);
  return out;
}

std::vector<int> cp_degrees(const ModelSpec& m, const TrainingSpec& t, long long ranks) {
  std::vector<int> out;
  for (int cp : divisors(ranks))
    if (passes([&](Violations& v) { check_cp(m, t, cp, v); })) out.push_back(cp);
  return out;
}

std::vector<int> pp_degrees(const ModelSpec& m, long long ranks) {
  std::vector<int> out;
  for (int pp : divisors(ranks))
    if (passes([&](Violations& v) { check_pp(m, pp, 1, v); })) out.push_back(pp);
  return out;
}

std::vector<int> ep_degrees(const ModelSpec& m, long long dp_cp) {
  if (!m.moe) return {1};
  std::vector<int> out;
  for (int ep : divisors(m.moe->experts))
    if (passes([&](Violations& v) { check_ep(m, ep, dp_cp, v); })) out.push_back(ep);
  return out;
}

bool sequence_parallel_allowed(int tp, int cp, int64_t seq_len) {
  return passes([&](Violations& v) { check_sequence_parallel(true, tp, cp, seq_len, v); });
}

std::vector<ScheduleChoice> schedule_choices(int pp, int layers, long long micro_batches, int max_virtual_stages) {
  using PS = PipelineSchedule;
  std::vector<ScheduleChoice> candidates{{PS::gpipe, 1}, {PS::one_f_one_b, 1}, {PS::zb_h1, 1}, {PS::zbv, 2}};
  for (int v = 2; v <= max_virtual_stages; ++v) candidates.push_back({PS::interleaved, v});
  ModelSpec model;
  model.layers = layers;
  TrainingSpec batch;  // micro_batches micro-batches of one sequence on one data-parallel rank
  batch.micro_batch = 1;
  batch.global_batch = micro_batches;
  std::vector<ScheduleChoice> out;
  for (const ScheduleChoice& c : candidates) {
    ParallelPlan p;
    p.pp = pp;
    p.pp_schedule = c.schedule;
    p.virtual_stages = c.virtual_stages;
    if (passes([&](Violations& v) {
          check_pp(model, pp, c.virtual_stages, v);
          check_schedule(p, batch, v);
        }))
      out.push_back(c);
  }
  return out;
}

}  // namespace paraplan::planner

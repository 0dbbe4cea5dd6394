// The exhaustive search. Enumeration is generated valid by construction (tests check every generated
// plan against validate_plan). Provably safe pruning, the only kind used: for fixed degrees, schedule,
// ZeRO stage, recompute and offload, every memory term is non-decreasing in the micro-batch size
// (activations scale with it, in-flight counts min(m, .) * b cannot shrink as b grows, model states do
// not depend on it), so once no plan of a shape fits at micro-batch b, none fits at any larger b.
#include "paraplan/search.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>

#include "paraplan/context.hpp"
#include "paraplan/flops.hpp"
#include "paraplan/memory.hpp"
#include "paraplan/parallel_rules.hpp"
#include "paraplan/pipeline.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/timing.hpp"

namespace paraplan::planner {

namespace {

// A plan's layout and results, small enough to keep many of them.
struct Rec {
  ParallelPlan par;
  int micro_batch = 1;
  Recompute recompute = Recompute::none;
  Offload offload = Offload::none;
  double step_s = 0, tokens_per_s = 0, mfu = 0, peak = 0, cost = 0;
};

double key(const Rec& r, SearchSort s) {
  switch (s) {
    case SearchSort::memory: return r.peak + r.step_s * 1e-6;  // ties broken by speed
    case SearchSort::cost: return r.cost > 0 ? r.cost : r.step_s;
    case SearchSort::throughput: return r.step_s;
  }
  return r.step_s;
}

// Total order on results: the sort key, then lower peak memory, then the layout itself — so that
// equally good plans come out in the same order whatever the threads did.
bool better(const Rec& a, const Rec& b, SearchSort s) {
  const double ka = key(a, s), kb = key(b, s);
  if (ka != kb) return ka < kb;
  if (a.peak != b.peak) return a.peak < b.peak;
  auto tie = [](const Rec& r) {
    const ParallelPlan& p = r.par;
    return std::make_tuple(p.dp, p.tp, p.pp, p.cp, p.ep, p.zero, p.sequence_parallel, static_cast<int>(p.pp_schedule),
                           p.virtual_stages, r.micro_batch, static_cast<int>(r.recompute), static_cast<int>(r.offload));
  };
  return tie(a) > tie(b);  // prefer data parallelism (larger dp first), the simplest layout
}

struct Collector {
  SearchSort sort;
  size_t k;
  std::vector<Rec> top;     // kept sorted, at most k
  std::vector<Rec> pareto;  // mutually non-dominated on (peak, step)
  uint64_t evaluated = 0, fitting = 0, pruned = 0, equivalent = 0;

  void add(const Rec& r) {
    ++fitting;
    add_top(r);
    add_pareto(r);
  }
  void add_top(const Rec& r) {
    if (top.size() >= k && !better(r, top.back(), sort)) return;
    auto it = std::upper_bound(top.begin(), top.end(), r, [&](const Rec& a, const Rec& b) { return better(a, b, sort); });
    top.insert(it, r);
    if (top.size() > k) top.pop_back();
  }
  void add_pareto(const Rec& r) {
    for (const Rec& p : pareto)
      if (p.peak <= r.peak && p.step_s <= r.step_s && (p.peak < r.peak || p.step_s < r.step_s || !better(r, p, SearchSort::throughput)))
        return;
    std::erase_if(pareto, [&](const Rec& p) {
      return r.peak <= p.peak && r.step_s <= p.step_s && (r.peak < p.peak || r.step_s < p.step_s || better(r, p, SearchSort::throughput));
    });
    pareto.push_back(r);
  }
  void merge(const Collector& o) {
    evaluated += o.evaluated;
    pruned += o.pruned;
    fitting += o.fitting;
    equivalent += o.equivalent;
    for (const Rec& r : o.top) add_top(r);
    for (const Rec& r : o.pareto) add_pareto(r);
  }
};

// One unit of work: every plan with these tp, cp, sp and pp (all ep, micro-batches, schedules, ...).
struct Task {
  int tp, cp, pp;
  bool sp;
};

struct Space {
  const Plan& base;
  const SearchOptions& opt;
  int gpus;
  StepFlops flops[3];  // per recompute mode
  std::vector<Task> tasks;
};

// The schedules parallel_rules allows. At pp = 1 they are all the same plan: only the default 1f1b.
void schedules(const Plan& p, long long m, int max_v, std::vector<ScheduleChoice>& out) {
  if (p.parallel.pp == 1) {
    out.assign(1, {PipelineSchedule::one_f_one_b, 1});
    return;
  }
  out = schedule_choices(p.parallel.pp, p.model.layers, m, max_v);
}

void run_task(const Space& sp, const Task& task, Plan& plan, Collector& col) {
  const ModelSpec& model = sp.base.model;
  const TrainingSpec& tr0 = sp.base.training;
  const long long gb = tr0.global_batch;
  const int dp = sp.gpus / (task.tp * task.cp * task.pp);
  const bool offload_ok = plan.cluster.gpu.host_link_bytes_per_s > 0 && plan.cluster.gpu.host_memory_bytes_per_s > 0;
  const std::vector<int> eps = ep_degrees(model, static_cast<long long>(dp) * task.cp);
  if (gb % dp != 0) return;
  const std::vector<int> mbs = divisors(gb / dp);
  std::vector<ScheduleChoice> scheds;
  std::vector<StageLayers> layers;
  for (int ep : eps) {
    for (size_t mi = 0; mi < mbs.size(); ++mi) {
      const int mb = mbs[mi];
      plan.parallel = sp.base.parallel;  // keeps the overlap switches (tp, ep, dp, pp)
      plan.parallel.dp = dp;
      plan.parallel.tp = task.tp;
      plan.parallel.cp = task.cp;
      plan.parallel.pp = task.pp;
      plan.parallel.ep = ep;
      plan.parallel.sequence_parallel = task.sp;
      plan.parallel.layer_split.clear();
      plan.training.micro_batch = mb;
      const ShapeContext ctx = make_context(plan);
      const long long m = gb / (static_cast<long long>(dp) * mb);
      schedules(plan, m, sp.opt.max_virtual_stages, scheds);
      bool any_fit = false;
      int layers_v = -1;
      for (const auto& [sched, v] : scheds) {
        plan.parallel.pp_schedule = sched;
        plan.parallel.virtual_stages = v;
        if (v != layers_v) {  // layers per stage depend on pp and v only
          layers = stage_layers(plan);
          layers_v = v;
        }
        // The previous ZeRO stage's result per (recompute, offload): a stage that changes neither peak
        // memory nor step time (dp x cp = 1 leaves nothing to shard) is the same plan, listed once.
        struct Seen { bool fits = false; double peak = 0, step = 0; } seen[3][3];
        for (int zero = 0; zero <= 3; ++zero) {
          plan.parallel.zero = zero;
          for (int rc = 0; rc < 3; ++rc) {
            if (!sp.opt.vary_recompute && rc != static_cast<int>(tr0.recompute)) continue;
            plan.training.recompute = static_cast<Recompute>(rc);
            for (int off = 0; off < 3; ++off) {
              const Offload o = static_cast<Offload>(off);
              if (o != Offload::none && (!sp.opt.vary_offload || !offload_ok)) continue;
              if (o == Offload::optimizer && zero < 1) continue;
              if (o == Offload::optimizer_params && zero != 3) continue;
              plan.training.offload = o;
              ++col.evaluated;
              const PeakMemory mem = peak_memory(plan, ctx, layers);
              Seen& prev = seen[rc][off];
              if (!mem.fits) {
                prev.fits = false;
                continue;
              }
              any_fit = true;
              const StepSummary t = step_summary(plan, ctx, sp.flops[rc], layers);
              if (prev.fits && prev.peak == mem.peak_bytes && prev.step == t.step_s) {
                ++col.fitting;
                ++col.equivalent;
                continue;
              }
              prev = {true, mem.peak_bytes, t.step_s};
              Rec r;
              r.par = plan.parallel;
              r.micro_batch = mb;
              r.recompute = plan.training.recompute;
              r.offload = o;
              r.step_s = t.step_s;
              r.tokens_per_s = t.tokens_per_s;
              r.mfu = t.mfu;
              r.peak = mem.peak_bytes;
              const double price = plan.cluster.price_per_gpu_hour;
              r.cost = price > 0 ? t.step_s * sp.gpus * price / 3600 / (t.tokens_per_s * t.step_s) * 1e6 : 0;
              col.add(r);
            }
          }
        }
      }
      if (!any_fit) {  // provably nothing larger fits (see the top of this file)
        col.pruned += mbs.size() - mi - 1;
        break;
      }
    }
  }
}

Candidate materialize(const Plan& base, int gpus, const Rec& r) {
  Candidate c;
  c.plan = base;
  c.plan.parallel = r.par;
  c.plan.cluster.gpus = gpus;
  c.plan.training.micro_batch = r.micro_batch;
  c.plan.training.recompute = r.recompute;
  c.plan.training.offload = r.offload;
  c.step_s = r.step_s;
  c.tokens_per_s = r.tokens_per_s;
  c.mfu = r.mfu;
  c.peak_bytes = r.peak;
  c.cost_per_million_tokens = r.cost;
  return c;
}

}  // namespace

SearchResult search(const Plan& base_in, const SearchOptions& opt) {
  const auto start = std::chrono::steady_clock::now();
  Plan base = base_in;
  const int gpus = opt.gpus > 0 ? opt.gpus : base.cluster.gpus;
  base.cluster.gpus = gpus;
  Violations cluster_errors;
  check_cluster_size(base.cluster, cluster_errors);
  if (opt.sort == SearchSort::cost && !(base.cluster.price_per_gpu_hour > 0))
    cluster_errors.add("cluster.price_per_gpu_hour", "unset",
                       "ranking by cost needs a price per GPU-hour (e.g. --set cluster.price_per_gpu_hour=2.5)");
  cluster_errors.throw_if_any();
  base.parallel.layer_split.clear();
  Space sp{base, opt, gpus, {}, {}};
  for (int rc = 0; rc < 3; ++rc) {
    Plan p = base;
    p.training.recompute = static_cast<Recompute>(rc);
    sp.flops[rc] = step_flops(p);
  }
  // Degrees from the legality generators (parallel_rules.hpp): every task is a valid shape.
  for (int tp : tp_degrees(base.model, gpus))
    for (int cp : cp_degrees(base.model, base.training, gpus / tp))
      for (int pp : pp_degrees(base.model, gpus / (tp * cp))) {
        sp.tasks.push_back({tp, cp, pp, false});
        if (tp > 1 && sequence_parallel_allowed(tp, cp, base.training.seq_len)) sp.tasks.push_back({tp, cp, pp, true});
      }

  int threads = opt.threads > 0 ? opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = std::max(1, std::min<int>(threads, static_cast<int>(sp.tasks.size())));
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> done{0};
  std::vector<Collector> cols(threads, Collector{opt.sort, static_cast<size_t>(std::max(1, opt.top_k)), {}, {}});
  std::mutex progress_mutex;
  auto worker = [&](int id) {
    Plan plan = base;
    for (size_t i; (i = next.fetch_add(1)) < sp.tasks.size();) {
      if (opt.cancel && opt.cancel->load()) return;
      run_task(sp, sp.tasks[i], plan, cols[id]);
      const uint64_t d = ++done;
      if (opt.progress) {
        std::lock_guard<std::mutex> lock(progress_mutex);
        opt.progress(d, sp.tasks.size());
      }
    }
  };
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back(worker, i);
  worker(0);
  for (auto& t : pool) t.join();

  Collector all{opt.sort, static_cast<size_t>(std::max(1, opt.top_k)), {}, {}};
  for (const Collector& c : cols) all.merge(c);
  SearchResult out;
  for (const Rec& r : all.top) out.top.push_back(materialize(base, gpus, r));
  std::sort(all.pareto.begin(), all.pareto.end(), [](const Rec& a, const Rec& b) { return a.peak < b.peak; });
  for (const Rec& r : all.pareto) out.pareto.push_back(materialize(base, gpus, r));
  out.evaluated = all.evaluated;
  out.fitting = all.fitting;
  out.equivalent = all.equivalent;
  out.pruned = all.pruned;
  out.cancelled = opt.cancel && opt.cancel->load();
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace paraplan::planner

// Parallel legality has one home (parallel_rules.hpp): the generators offer exactly what validate_plan
// accepts. Expected degree lists are derived by hand from the model dimensions (cited per case); the
// agreement tests build every offered plan and check it with validate_plan, and every value of the
// same candidate set that is not offered must be refused.
#include <gtest/gtest.h>

#include <algorithm>

#include "paraplan/parallel_rules.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/presets.hpp"

using namespace paraplan::planner;

namespace {

Plan base_plan(const std::string& model, int gpus, int64_t seq, int64_t global_batch) {
  Plan p;
  p.model = model_preset(model);
  p.cluster.gpu = hardware_preset("h100-sxm-80gb");
  p.cluster.gpus = gpus;
  p.cluster.gpus_per_node = gpus;  // one node: the whole-node rule is not what these tests are about
  p.parallel.dp = gpus;
  p.training.seq_len = seq;
  p.training.global_batch = global_batch;
  return p;
}

bool contains(const std::vector<int>& v, int x) { return std::find(v.begin(), v.end(), x) != v.end(); }

std::vector<std::string> fields(const Plan& p) {
  Violations v;
  validate_plan(p, v);
  std::vector<std::string> out;
  for (const Violation& x : v.list()) out.push_back(x.field);
  return out;
}

bool refused_on(const Plan& p, const std::string& field) {
  const auto f = fields(p);
  return std::find(f.begin(), f.end(), field) != f.end();
}

}  // namespace

TEST(ParallelRules, DegreesDerivedByHand) {
  // LLaMA-3-8B: 32 heads, 8 key/value heads, ffn 14,336 = 2^11 x 7. On 64 GPUs tp must divide the 32
  // heads and 14,336, and divide the 8 kv heads or be a multiple of them (then each rank holds one kv
  // head, replicated): {1, 2, 4, 8, 16, 32}; 64 does not divide 32 heads.
  const ModelSpec llama = model_preset("llama3-8b");
  EXPECT_EQ(tp_degrees(llama, 64), (std::vector<int>{1, 2, 4, 8, 16, 32}));
  // 32 layers: every divisor of 64 up to 32.
  EXPECT_EQ(pp_degrees(llama, 64), (std::vector<int>{1, 2, 4, 8, 16, 32}));
  // Dense model: expert parallelism is 1.
  EXPECT_EQ(ep_degrees(llama, 8), (std::vector<int>{1}));
  // Mixtral-8x7B, 8 experts: ep divides 8 and dp*cp = 4 -> {1, 2, 4}.
  EXPECT_EQ(ep_degrees(model_preset("mixtral-8x7b"), 4), (std::vector<int>{1, 2, 4}));
  // DeepSeek-V3 (MLA: no key/value-head rule): 128 heads, ffn 18,432 = 2^11 x 9, expert ffn 2,048:
  // divisors of 64 that divide all three: every one of them.
  EXPECT_EQ(tp_degrees(model_preset("deepseek-v3"), 64), (std::vector<int>{1, 2, 4, 8, 16, 32, 64}));
  // Causal CP needs 2cp | seq_len and flash attention: seq 8192 = 2^13 allows every power of two up
  // to 4096; seq 6144 = 2^11 x 3 on 16 ranks allows 1, 2, 4, 8, 16 (2*16 = 32 divides 6144).
  TrainingSpec t;
  t.seq_len = 6144;
  EXPECT_EQ(cp_degrees(ModelSpec{}, t, 16), (std::vector<int>{1, 2, 4, 8, 16}));
  t.seq_len = 6;  // 2cp | 6 only for cp = 1, 3
  EXPECT_EQ(cp_degrees(ModelSpec{}, t, 6), (std::vector<int>{1, 3}));
  t.flash_attention = false;
  EXPECT_EQ(cp_degrees(ModelSpec{}, t, 6), (std::vector<int>{1}));
  // Sequence parallelism: seq / cp divisible by tp.
  EXPECT_TRUE(sequence_parallel_allowed(4, 2, 8192));
  EXPECT_FALSE(sequence_parallel_allowed(3, 1, 8192));
  EXPECT_FALSE(sequence_parallel_allowed(1, 1, 8192));  // needs tp > 1
}

TEST(ParallelRules, SchedulesDerivedByHand) {
  using PS = PipelineSchedule;
  auto as_pairs = [](const std::vector<ScheduleChoice>& v) {
    std::vector<std::pair<PS, int>> out;
    for (const auto& c : v) out.emplace_back(c.schedule, c.virtual_stages);
    return out;
  };
  // pp 4, 8 layers, 6 micro-batches: ZBV's two chunks per stage fit (2 x 4 = 8 <= 8 layers);
  // interleaving needs micro-batches in multiples of pp (6 is not).
  EXPECT_EQ(as_pairs(schedule_choices(4, 8, 6)),
            (std::vector<std::pair<PS, int>>{{PS::gpipe, 1}, {PS::one_f_one_b, 1}, {PS::zb_h1, 1}, {PS::zbv, 2}}));
  // 8 micro-batches: interleaved v = 2 (8 chunks <= 8 layers); v = 3 would need 12 layers.
  EXPECT_EQ(as_pairs(schedule_choices(4, 8, 8)),
            (std::vector<std::pair<PS, int>>{
                {PS::gpipe, 1}, {PS::one_f_one_b, 1}, {PS::zb_h1, 1}, {PS::zbv, 2}, {PS::interleaved, 2}}));
  // pp 4 on 6 layers: no ZBV (8 chunks > 6 layers) — the case the GUI used to offer and plan refused.
  EXPECT_EQ(as_pairs(schedule_choices(4, 6, 8)),
            (std::vector<std::pair<PS, int>>{{PS::gpipe, 1}, {PS::one_f_one_b, 1}, {PS::zb_h1, 1}}));
  // No pipeline: the pipeline-only schedules are refused.
  EXPECT_EQ(as_pairs(schedule_choices(1, 32, 8)), (std::vector<std::pair<PS, int>>{{PS::gpipe, 1}, {PS::one_f_one_b, 1}}));
}

// Every combination the generators offer is a plan validate_plan accepts; every other value from the
// same candidates (divisors of the ranks left, every schedule with v = 1..8) is refused on its field.
TEST(ParallelRules, OfferedIsExactlyWhatValidateAccepts) {
  struct Case {
    const char* model;
    int gpus;
    int64_t seq, global_batch;
  };
  const Case cases[] = {{"llama3-8b", 16, 8192, 64}, {"mixtral-8x7b", 16, 4096, 48}, {"deepseek-v3", 32, 4096, 96},
                        {"tiny-llama", 12, 96, 24}, {"gpt-1.7b", 8, 2048, 40}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.model);
    const Plan base = base_plan(c.model, c.gpus, c.seq, c.global_batch);
    int accepted = 0;
    for (int tp : divisors(c.gpus)) {
      Plan p = base;
      p.parallel.tp = tp;
      p.parallel.dp = c.gpus / tp;
      const bool offered = contains(tp_degrees(p.model, c.gpus), tp);
      EXPECT_EQ(!refused_on(p, "parallel.tp"), offered) << "tp " << tp;
      if (!offered) continue;
      for (int cp : divisors(c.gpus / tp)) {
        p.parallel.cp = cp;
        const bool cp_offered = contains(cp_degrees(p.model, p.training, c.gpus / tp), cp);
        p.parallel.dp = c.gpus / (tp * cp);
        EXPECT_EQ(!refused_on(p, "parallel.cp"), cp_offered) << "cp " << cp;
        if (!cp_offered) continue;
        for (int pp : pp_degrees(p.model, c.gpus / (tp * cp))) {
          p.parallel.pp = pp;
          p.parallel.dp = c.gpus / (tp * cp * pp);
          if (p.training.global_batch % p.parallel.dp != 0) continue;  // the batch rule, tested in plan_io
          const long long dp_cp = static_cast<long long>(p.parallel.dp) * cp;
          for (int ep : ep_degrees(p.model, dp_cp))
            for (int sp = 0; sp < (tp > 1 ? 2 : 1); ++sp) {
              p.parallel.ep = ep;
              p.parallel.sequence_parallel = sp == 1;
              if (sp == 1 && !sequence_parallel_allowed(tp, cp, p.training.seq_len)) {
                EXPECT_TRUE(refused_on(p, "training.seq_len"));
                continue;
              }
              const long long m = p.training.global_batch / p.parallel.dp;
              const auto choices = schedule_choices(pp, p.model.layers, m);
              for (PipelineSchedule s : {PipelineSchedule::gpipe, PipelineSchedule::one_f_one_b,
                                         PipelineSchedule::interleaved, PipelineSchedule::zb_h1, PipelineSchedule::zbv})
                for (int v = 1; v <= 8; ++v) {
                  p.parallel.pp_schedule = s;
                  p.parallel.virtual_stages = v;
                  const bool sched_offered = std::any_of(choices.begin(), choices.end(), [&](const ScheduleChoice& x) {
                    return x.schedule == s && x.virtual_stages == v;
                  });
                  const auto f = fields(p);
                  EXPECT_EQ(f.empty(), sched_offered)
                      << "tp " << tp << " cp " << cp << " pp " << pp << " ep " << ep << " sp " << sp << " "
                      << to_string(s) << " v " << v << (f.empty() ? "" : ": refused on " + f[0]);
                  accepted += f.empty();
                }
            }
        }
      }
    }
    EXPECT_GT(accepted, 0);
  }
}

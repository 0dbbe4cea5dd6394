// Hugging Face config.json: refused with violations, or a model whose count needs no overflow, whose
// inline form (what paraplan writes) reads back to the same count, and which a small plan can estimate.
#include <nlohmann/json.hpp>

#include "fuzz_util.hpp"
#include "paraplan/memory.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/timing.hpp"

using namespace paraplan::planner;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto cfg = fuzz::json_of(data, size, "config.json");
  if (!cfg) return 0;
  Violations errors;
  const ModelSpec m = model_from_hf_config(*cfg, "config.json", errors);
  if (!errors.empty()) return 0;
  const ParamCount c = count_params(m);
  fuzz::require(c.total > 0 && c.active > 0 && c.active <= c.total);
  Violations back_errors;
  const ModelSpec back = model_from_json(model_to_json(m), "model", ".", back_errors);
  fuzz::require(back_errors.empty() && count_params(back).total == c.total);

  Plan p;
  p.model = m;
  p.training.seq_len = m.position_embedding == PositionEmbedding::learned ? std::min<int64_t>(m.max_seq_len, 1024) : 1024;
  p.training.micro_batch = 1;
  p.training.global_batch = 1;
  p.cluster.gpus = 1;
  Violations plan_errors;
  validate_plan(p, plan_errors);
  if (!plan_errors.empty()) return 0;
  (void)estimate_memory(p);
  (void)estimate_time(p);
  return 0;
}
